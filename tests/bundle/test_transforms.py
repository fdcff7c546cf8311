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
