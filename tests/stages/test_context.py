"""ParamsView: a stage sees exactly the keys its kind declares."""

from __future__ import annotations

import pytest

from pipespec.core.errors import ConfigError, UndeclaredParamError
from pipespec.stages.context import ParamsView

PARAMS = {
    "seed": 1,
    "dataset": {"target": "y", "task": "binary", "path": "x.csv"},
    "model": {"num_leaves": 31, "params": {"max_bin": 63}},
    "env": {"name": "???"},
}


def test_declared_keys_are_readable() -> None:
    view = ParamsView(PARAMS, ("seed", "dataset.target", "model"), "train")
    assert view["seed"] == 1
    assert view["dataset"]["target"] == "y"
    assert view["model"]["params"]["max_bin"] == 63
    assert view["model"].to_dict() == PARAMS["model"]
    assert set(view["dataset"]) == {"target"}


def test_undeclared_key_is_refused_with_the_key_named() -> None:
    view = ParamsView(PARAMS, ("seed", "dataset.target"), "train")
    with pytest.raises(
        UndeclaredParamError, match=r"stage 'train' read params key 'dataset\.path'"
    ):
        view["dataset"]["path"]
    with pytest.raises(UndeclaredParamError, match=r"'model'"):
        view["model"]


def test_missing_value_is_an_error() -> None:
    view = ParamsView(PARAMS, ("env",), "s")
    with pytest.raises(ConfigError, match=r"'env\.name' has no value"):
        view["env"]["name"]
