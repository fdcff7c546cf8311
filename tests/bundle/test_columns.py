"""The column representation (``bundle/columns.py``): what a column becomes, and the helpers
the input check and the transforms read it with. A few values and many go different ways
(value by value up to ``SMALL``, vectorised beyond): both give the same keys."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipespec.bundle.columns import (
    SMALL,
    as_array,
    category_codes,
    floats,
    index_in,
    is_arrow,
    parse_dates,
    parse_floats,
    present_keys,
    take,
    text_keys,
    to_objects,
)


def test_as_array_puts_each_kind_of_column_in_its_representation() -> None:
    numbers = as_array(pd.Series([1, 2, None], dtype="Int64"))
    assert numbers.dtype == np.float64
    assert np.isnan(numbers[2])
    flags = as_array(pd.Series([True, False]))
    assert flags.dtype == object
    assert flags.tolist() == [True, False]
    dates = as_array(pd.Series(pd.to_datetime(["2024-01-02 03:00"]).tz_localize("UTC")))
    assert dates.dtype == np.dtype("datetime64[ns]")
    assert str(dates[0]) == "2024-01-02T03:00:00.000000000"
    text = as_array(pd.Series(["a", None], dtype="str"))
    assert is_arrow(text)
    assert text.to_pylist() == ["a", None]
    mixed = as_array(pd.Series(["a", np.nan, pd.NA], dtype=object))
    assert mixed.tolist() == ["a", None, None]  # missing is None, whatever marked it


def test_text_keys_make_one_key_per_category() -> None:
    assert text_keys(np.array([1.0, 1.5, np.nan, -0.0, 1e20, np.inf])).tolist() == [
        "1", "1.5", None, "0", "1e+20", "inf",
    ]  # fmt: skip
    assert text_keys(np.array(["a", 2, True, None], dtype=object)).tolist() == [
        "a", "2", "True", None,
    ]  # fmt: skip
    arrow = pa.array(["a", None])
    assert text_keys(arrow) is arrow  # Arrow text stays Arrow


KEY_VALUES = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.integers(-5, 5),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(KEY_VALUES, min_size=1, max_size=8))
def test_a_few_keys_and_many_keys_are_the_same(values: list) -> None:
    few = np.empty(len(values), dtype=object)
    few[:] = values
    many = np.empty(len(values) * (SMALL // len(values) + 1), dtype=object)
    many[:] = values * (SMALL // len(values) + 1)
    assert len(few) <= SMALL < len(many)
    assert to_objects(text_keys(many)).tolist()[: len(values)] == text_keys(few).tolist()


def test_parse_floats_reads_text_as_the_csv_reader_does() -> None:
    values, wrong, blank = parse_floats(np.array([" 1.5 ", "", "abc", "1e3"], dtype=object))
    assert values[0] == 1.5
    assert values[3] == 1000.0
    assert wrong.tolist() == [False, False, True, False]
    assert blank.tolist() == [False, True, False, False]
    assert math.isnan(values[1])
    assert math.isnan(values[2])


def _arrow_alone(token: str | None) -> tuple[float, bool]:
    """A token as Arrow's cast reads it on its own: (value, unreadable)."""
    import pyarrow.compute as pc

    if token is None or not token.strip():
        return math.nan, False
    try:
        return float(pc.cast(pa.scalar(token.strip()), pa.float64()).as_py()), False
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return math.nan, True


EDGE_TOKENS = [
    "1", "+1", "-.5", "1.", ".", "e5", "1e", "1e+", "1E-3", "inf", "-Infinity", "NaN",
    "nan(1)", "+nan", "1,5", "0x10", "1_000", "1.2.3", "\uff11", "--1", "12abc", " 7 ", "",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(EDGE_TOKENS),
            st.text(alphabet="0123456789.eE+-infatyINFATY x,_", max_size=8),
            st.floats(allow_nan=True).map(repr),
            st.none(),
        ),
        max_size=40,
    )
)
def test_parse_floats_reads_each_token_as_arrow_reads_it_alone(tokens: list[str | None]) -> None:
    values, wrong, _ = parse_floats(np.array(tokens, dtype=object))
    expected = [_arrow_alone(t) for t in tokens]
    assert wrong.tolist() == [bad for _, bad in expected]
    assert np.array_equal(values, np.array([v for v, _ in expected]), equal_nan=True)


def test_floats_and_dates_of_a_mixed_column() -> None:
    mixed = np.array(["2.5", None, True, 3], dtype=object)
    assert floats(mixed)[[0, 2, 3]].tolist() == [2.5, 1.0, 3.0]
    assert math.isnan(floats(mixed)[1])
    dates = parse_dates(np.array(["2024-02-03", "not a date", None], dtype=object), "%Y-%m-%d")
    assert str(dates[0]).startswith("2024-02-03")
    assert np.isnat(dates[1:]).all()


def test_lookups_of_keys_in_a_category_list() -> None:
    categories = ("a", "b")
    assert index_in(np.array(["b", "z", None], dtype=object), categories).tolist() == [1, -1, -1]
    assert present_keys(pa.array(["a", None])).tolist() == [True, False]
    codes = category_codes(categories)
    assert codes == {"a": 0.0, "b": 1.0}
    assert category_codes(categories) is codes  # built once per list
    assert take(pa.array(["a", "b", "c"]), np.array([2, 0])).to_pylist() == ["c", "a"]
