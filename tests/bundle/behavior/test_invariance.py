"""Invariance: a column set to a value or noised; the noise is drawn from the checks' seed."""

from __future__ import annotations

import pytest

from pipespec.core.errors import ConfigError


def test_noise_is_seeded_per_check(run_spec) -> None:
    spec = {"invariance": {"noise": {"column": "monthly_charges", "noise": 0.5,
                                     "tolerance": 0.001}}}  # fmt: skip
    first = run_spec(**spec)
    assert first == run_spec(**spec)
    result = first["invariance"]["noise"]
    assert result["subject"] == "monthly_charges + N(0, 0.5 x std)"
    assert result["rows"] + result["refused_rows"] == first["data"]["rows"]
    assert run_spec(seed=7, **spec)["invariance"]["noise"] != result  # other noise drawn


def test_an_unknown_column_is_named_with_the_closest(run_spec) -> None:
    unknown = r"(?s)behavior\.invariance\.r\.column: no column 'regon'.*Did you mean 'region'"
    with pytest.raises(ConfigError, match=unknown):
        run_spec(invariance={"r": {"column": "regon", "value": "x"}})
    with pytest.raises(ConfigError, match=r"column 'contract' is not numeric, it cannot be shift"):
        run_spec(invariance={"c": {"column": "contract", "noise": 0.1}})
