"""Directional checks: declared, and derived from the model's monotone constraints (a list
in feature order, its text, or a mapping; any of LightGBM's names for the parameter)."""

from __future__ import annotations

import dataclasses

import pytest

from pipespec.bundle import behavior
from pipespec.core.errors import ConfigError
from pipespec.core.lightgbm_params import PARAMETERS


def test_monotone_keys_are_lightgbm_s_names_for_the_parameter() -> None:
    assert set(behavior.MONOTONE_KEYS) == {"monotone_constraints",
                                           *PARAMETERS["monotone_constraints"]}  # fmt: skip


def test_monotone_constraints_as_a_list_follow_the_model_features(checked) -> None:
    bundle, _ = checked
    names = bundle.feature_names
    params = {"model": {"params": {"mc": [0] * len(names)}}}
    params["model"]["params"]["mc"][names.index("tenure_months")] = -1
    constrained = dataclasses.replace(bundle, card={**bundle.card, "params": params})
    assert behavior.monotone_constraints(constrained) == {"tenure_months": -1}
    as_text = {"model": {"params": {"monotone_constraints": ",".join(["0"] * (len(names) - 1))
                                    + ",1"}}}  # fmt: skip
    last = dataclasses.replace(bundle, card={**bundle.card, "params": as_text})
    assert behavior.monotone_constraints(last) == {names[-1]: 1}


def test_a_derived_check_for_each_constrained_raw_numeric_input(checked, trained_project) -> None:
    bundle, frame = checked
    params = {"model": {"params": {"monotonic_cst": {"tenure_months": -1, "contract": 1}}}}
    constrained = dataclasses.replace(bundle, card={**bundle.card, "params": params})
    spec = behavior.spec_from({"name": "t", "search": {"enabled": False},
                               "latency": {"enabled": False}}, where="t")  # fmt: skip
    report = behavior.run_checks(constrained, frame, spec, base=trained_project, source="t")
    derived = report.directional["monotone_tenure_months"]
    assert derived["derived"]
    assert derived["direction"] == "down"
    assert derived["shift"] >= 1
    assert float(derived["shift"]).is_integer()
    assert derived["subject"].endswith("must not go up (monotone constraint)")
    assert report.notes == [
        "monotone constraint on 'contract' not checked: it is not a raw numeric input column"
    ]


def test_monotone_constraints_by_name_become_lightgbm_s_list() -> None:
    # the train stage's half of the monotone constraints (stages/training.py)
    from pipespec.stages.training import monotone_by_name

    params = {"monotone_constraints": {"b": 1, "c": -1}}
    monotone_by_name(params, ["a", "b", "c"])
    assert params["monotone_constraints"] == [0, 1, -1]
    with pytest.raises(ConfigError, match=r"model\.params\.mc: no feature 'tenure'.*"):
        monotone_by_name({"mc": {"tenure": 1}}, ["tenure_months", "age"])
    with pytest.raises(ConfigError, match=r"values must be -1, 0 or 1"):
        monotone_by_name({"mc": {"age": 2}}, ["age"])


def test_an_output_that_is_not_a_prediction_column_is_named(run_spec) -> None:
    with pytest.raises(ConfigError, match=r"output 'p_yes' is not a prediction column"):
        run_spec(directional={"d": {"column": "tenure_months", "shift": 1, "direction": "down",
                                    "output": "p_yes"}})  # fmt: skip
