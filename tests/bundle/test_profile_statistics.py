"""Statistics of the bundle computed the fast way (sorted quantiles, Arrow counts and
categories) equal the plain numpy and pandas computations, bit for bit: the bundle's bytes do
not depend on the path taken."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipespec.bundle.profile import categorical_profile, numeric_profile, sorted_quantile

GRIDS = (np.linspace(0, 1, 11)[1:-1], np.linspace(0.01, 0.99, 99), np.array([0.0, 0.5, 1.0]))
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)


@settings(max_examples=300, deadline=None)
@given(
    values=arrays(np.float64, st.integers(1, 400), elements=FLOATS | st.sampled_from([0.0, 1.5])),
    grid=st.sampled_from(GRIDS),
)
def test_sorted_quantile_is_numpys_quantile(values: np.ndarray, grid: np.ndarray) -> None:
    ordered = np.sort(values)  # the profile sorts a column once, then takes its quantiles
    expected = np.quantile(ordered, grid)
    assert sorted_quantile(ordered, grid).tobytes() == expected.tobytes()


def test_sorted_quantile_on_a_large_column() -> None:
    rng = np.random.default_rng(3)
    values = np.round(rng.lognormal(size=200_001), 3)  # many ties
    for grid in GRIDS:
        ordered = np.sort(values)
        assert sorted_quantile(ordered, grid).tobytes() == np.quantile(ordered, grid).tobytes()


def test_numeric_bins_count_every_value_once() -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 7, 5000).astype(float)  # ties on the edges
    values[:30] = np.nan
    profile = numeric_profile(values, 10)
    edges = np.asarray(profile["edges"])
    present = values[np.isfinite(values)]
    expected = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    assert profile["counts"] == expected.tolist()
    assert sum(profile["counts"]) + profile["missing"] == len(values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "ç", "", "10", None]), max_size=300))
def test_arrow_category_counts_match_the_object_path(keys: list[str | None]) -> None:
    arrow = categorical_profile(pa.array(keys, type=pa.string()))
    objects = categorical_profile(np.asarray(keys, dtype=object))
    assert arrow == objects
    assert objects["rows"] == len(keys)
    assert objects["missing"] == keys.count(None)
    assert sum(objects["counts"].values()) + objects["other"] + objects["missing"] == len(keys)


def test_arrow_category_counts_keep_the_top_and_the_rest() -> None:
    keys = [f"k{i % 300}" for i in range(3000)] + [None] * 5
    arrow = categorical_profile(pa.array(keys))
    assert arrow == categorical_profile(pd.Series(keys, dtype=object).to_numpy())
    assert len(arrow["counts"]) == 200
    assert (arrow["other"], arrow["missing"]) == (1000, 5)


def test_inferred_categories_are_the_same_from_arrow_and_object_text() -> None:
    """`infer` reads text read from a file (Arrow-backed) with Arrow; the schema is the one the
    same rows as Python objects give."""
    from pipespec.bundle.inputs import infer
    from pipespec.bundle.transforms import FORMAT_VERSION, load

    rng = np.random.default_rng(5)
    city = np.array(["b", "a", "ç", "", "c"], dtype=object)[rng.integers(0, 5, 2000)]
    city[rng.random(2000) < 0.1] = None
    document = {
        "version": FORMAT_VERSION,
        "target": {"name": "y", "task": "regression", "classes": None},
        "inputs": [{"name": "city", "type": "categorical"}],
        "steps": [{"op": "categorical", "column": "city", "categories": ["a", "b"]}],
        "features": [{"name": "city", "type": "categorical"}],
    }
    transforms = load(document)
    objects = pd.DataFrame({"city": pd.Series(city, dtype=object)})
    arrow = pd.DataFrame({"city": pd.Series(city, dtype=pd.StringDtype("pyarrow"))})
    from_objects = infer(objects, transforms, range_margin=None, ignored=[])
    from_arrow = infer(arrow, transforms, range_margin=None, ignored=[])
    assert from_arrow.columns[0].categories == ("", "a", "b", "c", "ç")
    assert from_arrow.columns[0].nullable is True
    assert from_arrow == from_objects


@pytest.mark.parametrize("index", ["range", "shuffled"])
def test_profile_sample_is_pandas_seeded_sample(index: str) -> None:
    """The profiled rows are ``sample(n, random_state=seed).sort_index()``'s, drawn on the row
    numbers alone; a frame whose index is not in order takes pandas' own path."""
    from pipespec.bundle.assemble import _sample

    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.integers(0, 9, 5000).astype(str)})
    if index == "shuffled":
        frame.index = rng.permutation(5000)
    expected = frame.sample(n=700, random_state=11).sort_index()
    pd.testing.assert_frame_equal(_sample(frame, 700, 11), expected)
    assert _sample(frame, 5000, 11) is frame
