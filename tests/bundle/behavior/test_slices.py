"""Slices: a column's values, a range, quantile bins; bounds and gaps; too few rows; a metric
the task lacks."""

from __future__ import annotations

import pytest

from pipespec.core.errors import ConfigError


def test_bins_cover_the_labelled_rows_and_gaps_are_measured(run_spec, check_of) -> None:
    report = run_spec(
        slices={
            "tenure": {"column": "tenure_months", "bins": 3, "max_gap": {"auc": 1.0}},
            "young": {"column": "tenure_months", "min": 0, "max": 6, "bounds": {"auc": ">= 0"}},
            "tiny": {"column": "region", "values": ["north"], "max_gap": {"auc": 1},
                     "min_rows": 100000},
        }
    )  # fmt: skip
    bins = report["slices"]["tenure"]
    assert list(bins) == ["q1", "q2", "q3"]
    assert sum(b["rows"] for b in bins.values()) == report["overall"]["rows"]
    q1 = bins["q1"]
    assert q1["where"].startswith("tenure_months in [")
    assert q1["gap_auc"] == pytest.approx(report["overall"]["auc"] - q1["auc"], abs=2e-6)
    assert check_of(report, "slice", "tenure.q1")["measure"] == "gap_auc"
    assert report["slices"]["young"]["where"] == "tenure_months in [0, 6)"
    tiny = check_of(report, "slice", "tiny")
    assert (tiny["measure"], tiny["passed"], tiny["bound"]) == ("rows", False, 100000)


def test_a_metric_the_task_lacks_is_named(run_spec) -> None:
    with pytest.raises(
        ConfigError, match=r"slices\.s\.bounds\.rmse: no metric 'rmse' for a binary"
    ):
        run_spec(slices={
            "s": {"column": "region", "values": ["north"], "bounds": {"rmse": "< 1"}}})  # fmt: skip
