"""``assemble`` on an Arrow table (the package stage's training rows, read without pandas):
``infer`` reads its float64 columns a row group at a time, and the schema is the one the
table's pandas frame gives, whatever the column holds (nulls, NaN, infinities, signed zeros,
no number at all, several chunks)."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipespec.bundle.assemble import TableRows
from pipespec.bundle.inputs import FloatRange, infer
from pipespec.bundle.transforms import FORMAT_VERSION, load

VALUE = st.one_of(
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.5, -2.25]),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


def _transforms(numeric: list[str], categorical: list[str]) -> object:
    inputs = [{"name": c, "type": "numeric"} for c in numeric]
    inputs += [{"name": c, "type": "categorical"} for c in categorical]
    return load(
        {
            "version": FORMAT_VERSION,
            "target": {"name": "y", "task": "regression", "classes": None},
            "inputs": inputs,
            "steps": [{"op": "to_numeric", "column": c} for c in numeric],
            "features": inputs,
        }
    )


def _table(chunks: list[list[float | None]]) -> pa.Table:
    parts = [pa.table({"x": pa.array(c, type=pa.float64())}) for c in chunks]
    return pa.concat_tables(parts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(VALUE, max_size=12), min_size=1, max_size=3))
def test_a_float_column_s_schema_is_its_pandas_series_s(chunks: list[list[float | None]]) -> None:
    table = _table(chunks)
    transforms = _transforms(["x"], [])
    from_arrow = infer(TableRows(table), transforms, range_margin=0.5, ignored=[])
    from_pandas = infer(table.to_pandas(), transforms, range_margin=0.5, ignored=[])
    assert from_arrow == from_pandas
    for a, b in zip(from_arrow.columns, from_pandas.columns, strict=True):  # -0.0 == 0.0
        assert [math.copysign(1, v) if v is not None else None for v in (a.min, a.max)] == [
            math.copysign(1, v) if v is not None else None for v in (b.min, b.max)
        ]


@pytest.mark.parametrize(
    ("chunks", "found"),
    [
        ([[1.0, None], [math.nan, -3.0]], (True, -3.0, 1.0)),
        ([[1.0, math.inf], [-math.inf, 2.0]], (False, 1.0, 2.0)),  # infinities are not a range
        ([[None], [None, None]], (True, None, None)),
        ([[0.0, 1.0]], None),  # a zero extreme: numpy's own answer
        ([[-0.5, -0.0]], None),
    ],
)
def test_arrow_float_range(chunks: list[list[float | None]], found: object) -> None:
    assert FloatRange.of(_table(chunks).column("x")).found() == found


def test_a_table_s_other_columns_and_its_sample_are_its_pandas_frame_s() -> None:
    """Columns that are not float64 are read as the table's pandas frame holds them (an int
    column with a null is a float column there); the profile's sample is ``_sample`` of that
    frame, row for row."""
    from pipespec.bundle.assemble import _sample

    n = 40
    table = pa.concat_tables(
        [
            pa.table(
                {
                    "x": pa.array([float(i) for i in range(start, start + n // 2)]),
                    "k": pa.array([i if i % 7 else None for i in range(start, start + n // 2)]),
                    "city": pa.array(
                        [None if i % 5 == 0 else f"c{i % 3}" for i in range(n // 2)],
                        type=pa.large_string(),
                    ),
                }
            )
            for start in (0, n // 2)
        ]
    )
    frame = table.to_pandas(split_blocks=True)
    transforms = _transforms(["x", "k"], ["city"])
    rows = TableRows(table)
    assert infer(rows, transforms, range_margin=None, ignored=[]) == infer(
        frame, transforms, range_margin=None, ignored=[]
    )
    assert infer(rows, transforms, range_margin=None, ignored=[]).columns[1].dtype == "float"
    expected = _sample(frame, 9, 3).reset_index(drop=True)
    assert rows.sample(9, 3).equals(expected)
    assert rows.sample(n, 3).equals(frame)


def test_pandas_metadata_of_a_table_is_honoured() -> None:
    """A table written from pandas carries its dtypes (a nullable ``Int64`` column): the
    schema is the one its frame gives (an int column, though it holds a missing value)."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "k": pd.array([1, None, 3, 4], dtype="Int64"),
            "x": pd.array([0.5, None, 2.0, 1.0], dtype="Float64"),
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    transforms = _transforms(["k", "x"], [])
    from_arrow = infer(TableRows(table), transforms, range_margin=None, ignored=[])
    assert from_arrow == infer(table.to_pandas(), transforms, range_margin=None, ignored=[])
    assert [c.dtype for c in from_arrow.columns] == ["int", "float"]


def test_a_float_column_declared_categorical_is_read_as_its_pandas_series() -> None:
    """A float64 column of an Arrow table that the transforms read as categories (codes
    stored as floats) gets the categories of its pandas frame (once a crash: its Arrow
    column reached the pandas path)."""
    table = _table([[0.5, 1.0, None], [1.5, 0.5]])
    transforms = _transforms([], ["x"])
    from_arrow = infer(TableRows(table), transforms, range_margin=None, ignored=[])
    assert from_arrow == infer(table.to_pandas(), transforms, range_margin=None, ignored=[])
    assert from_arrow.columns[0].categories == ("0.5", "1", "1.5")
