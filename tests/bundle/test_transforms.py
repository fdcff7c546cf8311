"""The transforms interpreter (``bundle/transforms.py``): the document it reads, one call from
checked columns to the model's matrix, the same numbers for a few rows (value by value) and
many (vectorised), and the errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipespec.bundle.columns import SMALL, as_array
from pipespec.bundle.transforms import (
    FORMAT_VERSION,
    apply,
    encode_target,
    load,
    matrix,
    model_columns,
    run,
)
from pipespec.core.documents import CategoricalStep
from pipespec.core.errors import DataError

DOCUMENT = {
    "version": FORMAT_VERSION,
    "target": {"name": "y", "task": "binary", "classes": ["no", "yes"]},
    "inputs": [
        {"name": "x", "type": "numeric"},
        {"name": "city", "type": "categorical"},
        {"name": "plan", "type": "categorical"},
    ],
    "steps": [
        {"op": "to_numeric", "column": "x"},
        {"op": "impute", "column": "x", "value": 0.0, "indicator": True},
        {"op": "clip", "column": "x", "lower": 0.0, "upper": 5.0},
        {"op": "categorical", "column": "city", "categories": ["a", "b"], "other": True},
        {"op": "onehot", "column": "plan", "categories": ["basic", "pro"]},
    ],
    "features": [
        {"name": "x", "type": "numeric"},
        {"name": "x_missing", "type": "numeric"},
        {"name": "city", "type": "categorical", "categories": ["a", "b"]},
        {"name": "plan=basic", "type": "numeric"},
        {"name": "plan=pro", "type": "numeric"},
    ],
}
TRANSFORMS = load(DOCUMENT)
FRAME = pd.DataFrame(
    {
        "x": [1.0, None, 9.0],
        "city": ["a", "z", None],
        "plan": ["pro", "basic", None],
        "y": ["yes", "no", "no"],
    }
)


def test_matrix_is_what_apply_writes_for_a_training_frame() -> None:
    names = TRANSFORMS.feature_names
    work = {c.name: as_array(FRAME[c.name]) for c in TRANSFORMS.inputs}
    features = matrix(TRANSFORMS, work, names)
    table = apply(TRANSFORMS, FRAME)
    np.testing.assert_array_equal(features, table[names].to_numpy())
    assert features.tolist()[0] == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert features.tolist()[1] == [0.0, 1.0, 2.0, 1.0, 0.0]  # 'z' is unseen: 'other' (2)
    assert np.isnan(features[2, 2])  # a missing category stays missing
    assert table["y"].tolist() == [1, 0, 0]


CATEGORY_VALUES = st.one_of(
    st.none(), st.sampled_from(["a", "b", "c", "1", "True"]), st.integers(0, 2), st.booleans()
)


@settings(max_examples=50, deadline=None)
@given(st.lists(CATEGORY_VALUES, min_size=1, max_size=6), st.booleans())
def test_a_few_rows_and_many_get_the_same_category_codes(values: list, other: bool) -> None:
    step = CategoricalStep(column="c", categories=("a", "1", "True"), other=other)
    copies = SMALL // len(values) + 1
    few = np.empty(len(values), dtype=object)
    few[:] = values
    many = np.empty(len(values) * copies, dtype=object)
    many[:] = values * copies
    small = run({"c": few}, [step])["c"]
    large = run({"c": many}, [step])["c"]
    assert small.tobytes() == large[: len(values)].tobytes()
    floats = np.array([np.nan if v is None or isinstance(v, str) else float(v) for v in values])
    small = run({"c": floats}, [step])["c"]
    large = run({"c": np.tile(floats, copies)}, [step])["c"]
    assert small.tobytes() == large[: len(values)].tobytes()


def test_a_few_rows_and_many_get_the_same_matrix() -> None:
    """A few rows' matrix is stacked in one call, many rows' a column at a time: the same
    numbers, shape and (column-major) layout."""
    names = TRANSFORMS.feature_names
    copies = SMALL // len(FRAME) + 1
    many = pd.concat([FRAME] * copies, ignore_index=True)

    def work(frame: pd.DataFrame) -> dict:
        return {c.name: as_array(frame[c.name]) for c in TRANSFORMS.inputs}

    for n in (1, 2, 3):
        small = matrix(TRANSFORMS, work(FRAME.iloc[:n]), names)
        large = matrix(TRANSFORMS, work(many), names)
        assert small.shape == (n, len(names))
        assert small.dtype == large.dtype == np.float64
        assert small.flags.f_contiguous
        assert large.flags.f_contiguous
        assert small.tobytes(order="F") == large[:n].tobytes(order="F")


def test_an_unsupported_version_or_field_is_refused_naming_the_file() -> None:
    with pytest.raises(DataError, match=r"here\.json: transforms format version 1 is not"):
        load({**DOCUMENT, "version": 1}, "here.json")
    with pytest.raises(DataError, match=r"here\.json is not a transforms document: .*bogus"):
        load({**DOCUMENT, "bogus": 1}, "here.json")


def test_a_custom_step_not_admitted_imports_nothing() -> None:
    document = {
        **DOCUMENT,
        "steps": [{"op": "custom", "fn": "evil.mod:Step", "state": {}}],
    }
    with pytest.raises(DataError, match=r"custom transform 'evil\.mod:Step' was not admitted"):
        apply(load(document), FRAME)


def test_model_columns_and_targets_that_do_not_match_are_named() -> None:
    assert model_columns(["plan=basic x"], ["plan=basic_x"]) == ["plan=basic x"]
    with pytest.raises(DataError, match="model's 1 input features do not match the transforms' 2"):
        model_columns(["a", "b"], ["a"])
    with pytest.raises(DataError, match="target 'y' has label\\(s\\) unseen in training: maybe"):
        encode_target(TRANSFORMS.target, pd.Series(["yes", "maybe"]))


SCHEMA_CATEGORIES = st.lists(st.sampled_from(["a", "b", "c", "1", "True", "x"]), unique=True)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(CATEGORY_VALUES, min_size=1, max_size=8),
    SCHEMA_CATEGORIES,
    st.lists(st.sampled_from(["a", "b", "c", "1", "True", "y"]), unique=True, min_size=1),
    st.booleans(),
    st.sampled_from(["objects", "arrow", "floats"]),
)
def test_the_checks_category_lookup_gives_the_codes_of_a_lookup_of_its_own(
    values: list, schema: list, fitted: list, other: bool, kind: str
) -> None:
    """The categorical step reuses the input check's lookup (``Codes``) of the same array:
    byte-identical codes whatever the schema's list holds (a fitted category the schema
    lacks: the step looks up itself), for all rows and for taken rows."""
    import pyarrow as pa

    from pipespec.bundle.columns import Codes, positions_in, text_keys

    copies = SMALL // len(values) + 2
    many = np.empty(len(values) * copies, dtype=object)
    many[:] = values * copies
    if kind == "arrow":
        column = pa.array([v if v is None else str(v) for v in many], type=pa.string())
    elif kind == "floats":
        column = np.array([np.nan if v is None or isinstance(v, str) else float(v) for v in many])
    else:
        column = many
    step = CategoricalStep(column="c", categories=tuple(fitted), other=other)
    known = Codes(column, tuple(schema), positions_in(text_keys(column), tuple(schema)))
    alone = run({"c": column}, [step])["c"]
    shared = run({"c": column}, [step], codes={"c": known})["c"]
    assert shared.tobytes() == alone.tobytes()
    rows = np.arange(0, len(many), 2)
    taken = column.take(rows) if kind == "arrow" else column[rows]
    alone = run({"c": taken}, [step])["c"]
    shared = run({"c": taken}, [step], codes={"c": known.take(rows, taken)})["c"]
    assert shared.tobytes() == alone.tobytes()


def test_the_checks_lookup_is_used_only_for_the_array_it_was_made_from() -> None:
    from pipespec.bundle.columns import Codes

    column = np.array(["a", "b"] * SMALL, dtype=object)
    step = CategoricalStep(column="c", categories=("a", "b"), other=False)
    flipped = np.tile(np.array([1, 0], dtype=np.int32), SMALL)  # not the keys' positions
    known = Codes(column, ("a", "b"), flipped)
    assert run({"c": column}, [step], codes={"c": known})["c"][:2].tolist() == [1.0, 0.0]
    other = column.copy()  # an equal array, not the one looked up (renamed, imputed, ...)
    assert run({"c": other}, [step], codes={"c": known})["c"][:2].tolist() == [0.0, 1.0]


def test_predicting_a_frame_shares_the_lookup_and_matches_the_interpreter_alone() -> None:
    """``check`` keeps its lookups for the categorical columns of many rows, and the
    matrix made with them is the matrix made without."""
    from pipespec.bundle.inputs import check, infer

    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, None, 4.0] * SMALL,
            "city": pd.Series(["a", "b", "z", None] * SMALL, dtype="str"),
            "plan": ["pro", "basic", "pro", None] * SMALL,
        }
    )
    schema = infer(frame.iloc[:8], TRANSFORMS, range_margin=None, ignored=[])
    checked = check(schema, frame, typed=False)
    assert set(checked.codes) == {"city", "plan"}
    names = TRANSFORMS.feature_names
    rows = np.arange(1, len(frame), 3)
    for taken in (None, rows):
        work = dict(checked.work) if taken is None else checked.take(taken)
        with_codes = matrix(TRANSFORMS, dict(work), names, codes=checked.codes_of(work, taken))
        without = matrix(TRANSFORMS, dict(work), names)
        assert with_codes.tobytes() == without.tobytes()
