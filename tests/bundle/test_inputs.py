"""The input schema without a model: inference from training rows, and `check` on typed
(JSON) and text (CSV) input, including values that once were 500s; malformed values are
refused, unusual ones flagged, and `Strictness` turns each unusual kind into a refusal."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipespec.bundle.columns import text_keys, to_objects
from pipespec.bundle.inputs import (
    ABSENT,
    NOT_FINITE,
    NOT_WHOLE,
    NULL,
    OUT_OF_RANGE,
    UNSEEN,
    WRONG_TYPE,
    InputSchema,
    NonFinite,
    check,
    infer,
)
from pipespec.bundle.transforms import FORMAT_VERSION, apply, load, matrix
from pipespec.core.documents import Strictness, from_json, to_json

TRAIN = pd.DataFrame(
    {
        "x": [1.5, 2.0, np.nan, 4.0, 10.0],
        "n": [1, 2, 3, 4, 5],
        "city": ["a", "b", "a", None, "c"],
        "code": [10, 20, 10, 30, 20],  # an integer column declared categorical
        "ratio": [0.5, 1.0, 0.5, 1.5, np.nan],  # a float column declared categorical
        "y": [0, 1, 0, 1, 0],
    }
)
INPUTS = {"x": "numeric", "n": "numeric", "city": "categorical", "code": "categorical"}
INPUTS["ratio"] = "categorical"
CATEGORIES = {"city": ["a", "b", "c"], "code": ["10", "20", "30"], "ratio": ["0.5", "1", "1.5"]}
DOCUMENT = {  # the documented transforms format, written by hand
    "version": FORMAT_VERSION,
    "target": {"name": "y", "task": "binary", "classes": [0, 1]},
    "inputs": [{"name": k, "type": v} for k, v in INPUTS.items()],
    "steps": [
        *({"op": "to_numeric", "column": c} for c in ("x", "n")),
        *({"op": "categorical", "column": c, "categories": v} for c, v in CATEGORIES.items()),
    ],
    "features": [{"name": k, "type": v} for k, v in INPUTS.items()],
}
TRANSFORMS = load(DOCUMENT)


@pytest.fixture(scope="module")
def schema() -> InputSchema:
    return infer(TRAIN, TRANSFORMS, range_margin=0.5, ignored=["id"])


def test_infer_records_types_ranges_and_categories(schema: InputSchema) -> None:
    x, n, city, code, ratio = schema.columns
    assert (x.type, x.dtype, x.nullable, x.min, x.max) == ("numeric", "float", True, 1.5, 10.0)
    assert (x.low, x.high) == (1.5 - 4.25, 10.0 + 4.25)
    assert (n.dtype, n.nullable) == ("int", False)
    assert (city.dtype, city.nullable, city.categories) == ("str", True, ("a", "b", "c"))
    assert (code.dtype, code.categories) == ("int", ("10", "20", "30"))
    assert (ratio.dtype, ratio.categories) == ("float", ("0.5", "1", "1.5"))
    assert from_json(InputSchema, json.loads(json.dumps(to_json(schema)))) == schema


NAMES = TRANSFORMS.feature_names


def test_training_rows_conform_to_what_the_transforms_saw(schema: InputSchema) -> None:
    for rows, typed in ((TRAIN, False), (_records(TRAIN), True)):
        checked = check(schema, rows, typed=typed)
        assert checked.valid.all()
        ours = matrix(TRANSFORMS, dict(checked.work), NAMES)
        theirs = apply(TRANSFORMS, TRAIN)[NAMES].to_numpy()
        np.testing.assert_array_equal(ours, theirs)


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def _problems(schema: InputSchema, records: list[dict], typed: bool = True) -> set[tuple]:
    checked = check(schema, records, typed=typed)
    return {(p.row, p.column, p.reason) for p in checked.iter_problems()}


GOOD = {"x": 2.0, "n": 3, "city": "a", "code": 10, "ratio": 0.5}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("x", "two", WRONG_TYPE),  # JSON: text that is no number (batch reads "2.0" as 2)
        ("x", True, WRONG_TYPE),
        ("x", [1], WRONG_TYPE),
        ("x", {"a": 1}, WRONG_TYPE),
        ("x", NonFinite("NaN"), NOT_FINITE),
        ("x", NonFinite("-Infinity"), NOT_FINITE),
        ("x", math.inf, NOT_FINITE),
        ("x", 10**400, NOT_FINITE),  # beyond float range: once an OverflowError
        ("x", 100.0, OUT_OF_RANGE),
        ("n", None, NULL),
        ("city", "z", UNSEEN),
        ("city", 3, WRONG_TYPE),
        ("city", "\ud800", WRONG_TYPE),  # a lone surrogate: no table can hold it
        ("code", 40, UNSEEN),
        ("code", 10.5, WRONG_TYPE),
        ("code", "ten", WRONG_TYPE),
        ("code", 10**400, WRONG_TYPE),
        ("code", NonFinite("NaN"), WRONG_TYPE),
        ("ratio", 2.5, UNSEEN),
    ],
)
def test_json_values_that_break_the_schema(schema, field, value, reason) -> None:
    assert _problems(schema, [{**GOOD, field: value}]) == {(0, field, reason)}
    # the same record in a frame of JSON values: the same problem
    frame = pd.DataFrame({c: pd.Series([{**GOOD, field: value}[c]], dtype=object) for c in GOOD})
    checked = check(schema, frame, typed=True)
    assert {(p.row, p.column, p.reason) for p in checked.iter_problems()} == {(0, field, reason)}


def test_malformed_is_refused_and_unusual_is_flagged(schema: InputSchema) -> None:
    records = [
        GOOD,
        {**GOOD, "x": 100.0},  # out of range
        {**GOOD, "city": "z"},  # unseen category
        {**GOOD, "n": None},  # a null where training had none
        {**GOOD, "x": "two"},  # malformed: text that is no number
        {k: v for k, v in GOOD.items() if k != "city"},  # malformed: a field missing
    ]
    checked = check(schema, records, typed=True)
    assert checked.refused.tolist() == [False, False, False, False, True, True]
    assert checked.warned.tolist() == [False, True, True, True, False, False]
    warned = {(p.row, p.reason) for p in checked.iter_problems(kind="warning")}
    assert warned == {(1, OUT_OF_RANGE), (2, UNSEEN), (3, NULL)}
    # unusual values reach the model as training treats them: the value, 'other', missing
    assert checked.work["x"][1] == 100.0
    assert checked.work["city"][2] == "z"
    assert np.isnan(checked.work["n"][3])
    features = matrix(TRANSFORMS, checked.take(np.arange(4)), NAMES)
    assert np.isnan(features[2, NAMES.index("city")])  # no 'other' bucket here: missing
    # strictness turns each kind back into a refusal, one at a time
    for kind, row in (("out_of_range", 1), ("unseen_category", 2), ("unexpected_null", 3)):
        strict = check(schema, records, typed=True, strict=Strictness(**{kind: True}))
        assert strict.refused.tolist() == [i in (row, 4, 5) for i in range(6)], kind


def test_json_values_that_pass(schema: InputSchema) -> None:
    ok = [GOOD, {**GOOD, "x": None, "city": None}, {**GOOD, "code": 20.0, "n": 2.0}]
    assert _problems(schema, ok) == set()
    # numbers as text are read as a file's text is: the same values as the numbers
    as_text = check(schema, [{**GOOD, "x": "2.5", "n": "3", "code": "20"}], typed=True)
    assert not as_text.n_invalid
    assert as_text.work["x"].tolist() == [2.5]
    assert as_text.work["code"].tolist() == [20.0]
    # a fraction where training had only whole numbers is predicted, and flagged
    fraction = check(schema, [{**GOOD, "n": 2.5}], typed=True)
    assert not fraction.n_invalid
    assert [(p.column, p.reason, p.message()) for p in fraction.iter_problems()] == [
        ("n", NOT_WHOLE, "field 'n': not a whole number: 2.5 (expected a number in [-1, 7])")
    ]
    checked = check(schema, ok, typed=True)
    assert checked.work["code"].tolist() == [10.0, 10.0, 20.0]
    assert to_objects(text_keys(checked.work["code"])).tolist() == ["10", "10", "20"]
    assert checked.work["ratio"].tolist() == [0.5, 0.5, 0.5]


def test_text_input_is_parsed(schema: InputSchema) -> None:
    frame = pd.DataFrame(
        {
            "x": ["2.5", "abc", None, "inf"],
            "n": ["1", "2", "3", "4"],
            "city": ["a", "b", "zz", None],
            "code": ["10", "20", "1x", "30"],
            "ratio": ["0.5", "1", "1.5", "0.50"],
        },
        dtype=object,
    )
    checked = check(schema, frame, typed=False, first_row=100)
    found = {(p.row, p.column, p.reason) for p in checked.iter_problems()}
    assert found == {
        (101, "x", WRONG_TYPE),
        (102, "city", UNSEEN),
        (103, "x", NOT_FINITE),
        (102, "code", WRONG_TYPE),
    }
    assert checked.valid.tolist() == [True, False, False, False]
    assert checked.work["ratio"].tolist() == [0.5, 1.0, 1.5, 0.5]
    assert to_objects(text_keys(checked.work["ratio"])).tolist() == ["0.5", "1", "1.5", "0.5"]


def test_an_absent_column_is_reported_for_every_row(schema: InputSchema) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    checked = check(schema, frame, typed=False)
    assert not checked.valid.any()
    assert checked.counts()[("city", ABSENT)] == 2
    message = next(p for p in checked.iter_problems() if p.column == "n").message()
    assert message == "field 'n': missing (expected a number in [-1, 7])"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.sampled_from([NonFinite("NaN"), NonFinite("Infinity"), NonFinite("-Infinity")]),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["x", "n", "city", "code", "ratio"]), JSON_VALUES),
        min_size=1,
        max_size=4,
    )
)
def test_check_never_raises_on_any_json(records: list[dict]) -> None:
    """Whatever a client sends, `check` answers with problems, never an exception (a 500)."""
    schema = infer(TRAIN, TRANSFORMS, range_margin=0.5, ignored=[])
    checked = check(schema, records, typed=True)
    assert len(checked.valid) == len(records)
    for problem in checked.iter_problems():
        assert problem.column in schema.names
        assert problem.message().startswith(f"field '{problem.column}'")
    rows = np.flatnonzero(checked.valid)
    features = matrix(TRANSFORMS, checked.take(rows), NAMES)
    present = ~np.isnan(features[:, NAMES.index("n")])
    assert np.isfinite(features[:, NAMES.index("n")][present]).all()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                k: st.one_of(JSON_VALUES, st.sampled_from([1.5, 2, 4.0, "a", "b", "zz", 10]))
                for k in ("x", "n", "city", "code", "ratio")
            }
        ),
        min_size=1,
        max_size=3,
    )
)
def test_a_few_records_checked_value_by_value_match_the_vectorised_check(
    records: list[dict],
) -> None:
    """The one-record shortcut (``_usual``) gives the vectorised path's values and problems."""
    import pipespec.bundle.inputs as inputs

    schema = infer(TRAIN, TRANSFORMS, range_margin=0.5, ignored=[])
    fast = check(schema, records, typed=True)
    shortcut = inputs._usual
    inputs._usual = lambda col, listed: None  # the vectorised path for every column
    try:
        slow = check(schema, records, typed=True)
    finally:
        inputs._usual = shortcut
    assert fast.work.keys() == slow.work.keys()
    for name, values in fast.work.items():
        assert values.dtype == slow.work[name].dtype, name
        assert np.array_equal(values, slow.work[name], equal_nan=values.dtype.kind == "f"), name
    assert np.array_equal(fast.refused, slow.refused)
    assert np.array_equal(fast.warned, slow.warned)
    assert [p.to_json() for p in fast.iter_problems()] == [
        p.to_json() for p in slow.iter_problems()
    ]
    # the columns the shortcut took whole are named (the metrics count no missing value in
    # them): nothing in them is noted or missing
    assert not slow.usual
    noted = {p.column for p in slow.iter_problems()}
    for name in fast.usual:
        assert name not in noted, name
        assert not any(v is None or v != v for v in slow.work[name].tolist()), name


def test_the_check_names_the_columns_read_whole_by_the_shortcut(schema: InputSchema) -> None:
    good = {"x": 2.0, "n": 3, "city": "b", "code": "20", "ratio": "1"}
    assert check(schema, [good], typed=True).usual == {"x", "n", "city"}  # text codes: general
    odd = check(schema, [{**good, "x": None, "city": "zz"}], typed=True)
    assert odd.usual == {"n"}
    assert check(schema, [good] * 100, typed=True).usual == set()  # many rows: vectorised


def _many(n: int = 300) -> pd.DataFrame:
    """A frame of many rows (past ``SMALL``: the hash lookups and the kept ``Codes``) with
    unseen categories, missing keys and values out of range in every categorical column."""
    rng = np.random.default_rng(7)
    city = rng.choice(np.array(["a", "b", "c", "z", None], dtype=object), n)
    return pd.DataFrame(
        {
            "x": rng.uniform(0, 12, n),
            "n": rng.integers(1, 6, n),
            "city": pd.array(city, dtype="str"),
            "code": rng.choice(np.array([10.0, 20.0, 30.0, 40.0, np.nan]), n),
            "ratio": rng.choice(np.array([0.5, 1.0, 1.5, 2.5, np.nan]), n),
        }
    )


def test_a_dictionary_text_column_is_checked_as_its_plain_text(schema: InputSchema) -> None:
    """A categorical of text (as ``read_dictionary`` reads a Parquet column), its lookup done
    on the dictionary, gives the plain text column's values, problems and model matrix; the
    lookup reused by the categorical step (float codes, NaN where missing) gives what the
    transforms give without it."""
    plain = _many()
    coded = plain.assign(city=plain["city"].astype(pd.CategoricalDtype(["q", "c", "z", "a", "b"])))
    ours, theirs = check(schema, coded, typed=False), check(schema, plain, typed=False)
    assert type(ours.work["city"]).__module__.startswith("pyarrow")
    assert ours.work["city"].to_pylist() == theirs.work["city"].to_pylist()
    assert [p.to_json() for p in ours.iter_problems()] == [
        p.to_json() for p in theirs.iter_problems()
    ]
    assert {r for _, r in ours.counts()} == {UNSEEN, NULL}
    assert np.array_equal(ours.codes["city"].positions, theirs.codes["city"].positions)
    expected = apply(TRANSFORMS, plain)[NAMES].to_numpy()
    for checked in (ours, theirs):
        got = matrix(TRANSFORMS, dict(checked.work), NAMES, None, checked.codes)
        assert got.tobytes() == expected.tobytes()


def test_many_rows_flag_each_unusual_number(schema: InputSchema) -> None:
    """Past ``SMALL`` rows a numeric column is found usual by its minimum and maximum; any
    infinity, value out of range or fraction (in a column not of integers) is still named."""
    clean = _many()
    numeric = {("x", r) for r in (NOT_FINITE, OUT_OF_RANGE)} | {("n", NOT_WHOLE)}

    def named(frame: pd.DataFrame) -> set[tuple]:
        checked = check(schema, frame, typed=False)
        return {(p.row, p.column, p.reason) for p in checked.iter_problems()
                if (p.column, p.reason) in numeric}  # fmt: skip

    assert named(clean) == set()
    bad = clean.assign(n=clean["n"].astype("float64"))
    bad.loc[10, "x"], bad.loc[11, "x"], bad.loc[12, "n"] = math.inf, 100.0, 2.5
    assert named(bad) == {(10, "x", NOT_FINITE), (11, "x", OUT_OF_RANGE), (12, "n", NOT_WHOLE)}
    assert named(clean.assign(n=clean["n"].astype("Int64"))) == set()


def test_a_large_frame_read_side_by_side_is_checked_as_one_read_in_turn(
    schema: InputSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``SIDE_BY_SIDE_ROWS`` rows a frame's columns are read on the check's thread
    pool; every kind of column (Arrow text, object text with a number among it, a
    dictionary, integers, floats with infinities and fractions, an absent column) gives the
    conformed values, problems, flags and kept lookups that reading them one after another
    gives."""
    import threading

    from pipespec.bundle import inputs

    frame = _many(inputs.SIDE_BY_SIDE_ROWS + 1000)
    frame.loc[5, "x"], frame.loc[6, "x"] = math.inf, 100.0
    objects = frame["city"].astype(object).where(frame["city"].notna(), None)
    objects[7] = 10  # a number among text: its key is '10'
    frames = {
        "arrow text": frame,
        "object text": frame.assign(city=objects),
        "dictionary": frame.assign(city=frame["city"].astype("category")),
        "fractions": frame.assign(n=frame["n"].astype("float64") + (frame.index % 97 == 0) / 2),
        "absent": frame.drop(columns=["code"]),
    }
    readers: set[str] = set()
    read_series = inputs._read_series

    def watched(*args: object) -> object:
        readers.add(threading.current_thread().name)
        return read_series(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(inputs, "_read_series", watched)

    def outcome(rows: pd.DataFrame) -> tuple:
        checked = check(schema, rows, typed=False)
        work = {
            k: v.to_pylist() if hasattr(v, "to_pylist") else list(v)
            for k, v in checked.work.items()
        }
        return (
            repr(work),
            [p.to_json() for p in checked.iter_problems()],
            checked.refused.tobytes(),
            checked.warned.tobytes(),
            {k: c.positions.tobytes() for k, c in checked.codes.items()},
        )

    for name, rows in frames.items():
        readers.clear()
        side_by_side = outcome(rows)
        assert readers, name
        assert all(r.startswith("pipespec-check") for r in readers), name
        monkeypatch.setattr(inputs, "SIDE_BY_SIDE_ROWS", len(rows) + 1)
        readers.clear()
        assert outcome(rows) == side_by_side, name
        assert readers == {threading.current_thread().name}, name
        monkeypatch.setattr(inputs, "SIDE_BY_SIDE_ROWS", len(rows))
    assert {r for _, r in check(schema, frames["absent"], typed=False).counts()} >= {ABSENT}
