"""Running the checks on the session's trained project (real LightGBM): every kind's
failure named in one run, the sampled rows, data the bundle cannot read, and `pipespec test`
on a serving host."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import run_cli
from pipespec.bundle import behavior
from pipespec.core.errors import DataError


def test_failed_checks_name_the_check_the_subject_the_value_and_the_bound(
    run_spec, check_of
) -> None:
    report = run_spec(
        slices={
            "two_year": {"column": "contract", "values": ["two-year"], "bounds": {"auc": ">= 0.99"}}
        },
        invariance={"contract": {"column": "contract", "value": "two-year", "tolerance": 0.0}},
        directional={
            # churn falls with tenure: expecting it to rise is wrong on most rows
            "wrong_way": {"column": "tenure_months", "shift": 24, "direction": "up"},
        },
    )
    assert not report["passed"]
    bound = check_of(report, "slice", "two_year")
    assert not bound["passed"]
    assert re.fullmatch(
        r"slice 'two_year' \(contract in \['two-year'\]\): auc = 0\.\d+, required >= 0\.99",
        bound["message"],
    )
    invariance = check_of(report, "invariance", "contract")
    assert not invariance["passed"]
    assert invariance["value"] > 0.3  # the contract drives churn: most predictions move
    assert "contract set to 'two-year'" in invariance["message"]
    wrong = check_of(report, "directional", "wrong_way")
    assert not wrong["passed"]
    assert wrong["value"] > 0.3
    assert "tenure_months +24: prediction must not go down" in wrong["message"]
    assert report["directional"]["wrong_way"]["shift"] == 24.0  # a float, as before
    error = behavior.failure_error(report)
    assert error.exit_code == 10
    assert "3 behaviour check(s) failed" in error.message


def test_rows_are_a_seeded_sample_and_no_target_skips_the_metrics(checked, trained_project) -> None:
    bundle, frame = checked
    spec = behavior.spec_from({"name": "t", "rows": 100, "search": {"enabled": False},
                               "latency": {"enabled": False}}, where="t")  # fmt: skip
    unlabelled = frame.drop(columns=[str(bundle.output.target)])
    report = behavior.run_checks(bundle, unlabelled, spec, base=trained_project, source="u")
    assert report.data == {"source": "u", "rows": 100, "total_rows": len(frame)}
    assert report.overall == {}
    assert report.checks == []
    assert report.notes == [f"no target column '{bundle.output.target}': slices not checked"]
    one = {"s": {"column": "region", "values": ["north"], "max_gap": {"auc": 1}}}
    slices = behavior.spec_from({"name": "t", "slices": one}, where="t")
    target = bundle.output.target
    with pytest.raises(DataError, match=rf"no target column '{target}': slices need labels"):
        behavior.run_checks(bundle, unlabelled, slices, base=trained_project, source="u")


def test_data_the_bundle_cannot_read_is_refused_naming_the_field(
    checked, trained_project: Path
) -> None:
    bundle, frame = checked
    spec = behavior.spec_from({"name": "t"}, where="t")
    match = rf"(?s){len(frame)} row\(s\) of the data \(x\.csv\).*contract"
    with pytest.raises(DataError, match=match):
        behavior.run_checks(
            bundle, frame.drop(columns=["contract"]), spec, base=trained_project, source="x.csv"
        )
    with pytest.raises(DataError, match=r"^x\.csv has no rows: nothing to check"):
        behavior.run_checks(bundle, frame.iloc[:0], spec, base=trained_project, source="x.csv")


def test_pipespec_test_on_a_serving_host_exits_10_naming_the_failure(
    trained_project: Path, tmp_path: Path
) -> None:
    bundle = trained_project / "models" / "bundle"
    data = trained_project / "data" / "split" / "test.parquet"
    # the project's own checks (params.yaml), run where params.yaml is: they pass
    ok = run_cli("test", "--bundle", str(bundle), str(data), cwd=trained_project)
    assert "all checks passed" in ok.stdout
    # a checks file on a host without the project
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        yaml.safe_dump(
            {
                "behavior": {
                    "name": "host",
                    "slices": {
                        "fiber": {
                            "column": "internet_service",
                            "values": ["fiber"],
                            "max_gap": {"auc": -0.5},
                        },
                    },
                    "latency": {"records": 10, "batches": 2, "batch_rows": 20},
                }
            }
        )
    )
    proc = run_cli(
        "test", "--bundle", str(bundle), str(data), "--checks", str(checks),
        "--report", str(tmp_path / "out"), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 10, proc.stderr
    assert re.search(
        r"slice 'fiber' \(internet_service in \['fiber'\]; overall auc 0\.\d+, slice 0\.\d+\): "
        r"gap_auc = -?0\.\d+, required <= -0\.5",
        proc.stderr.replace("\n", " "),
    ), proc.stderr
    written: dict[str, Any] = json.loads((tmp_path / "out.json").read_text())
    assert written["checks_failed"] == 1
    assert written["latency"]["single"]["p99_ms"] > 0  # the host's report keeps the timings
    assert "1 CHECK(S) FAILED" in (tmp_path / "out.html").read_text()
    missing = run_cli("test", "--bundle", str(bundle), str(data), cwd=tmp_path, check=False)
    assert missing.returncode == 2
    assert "no checks: give --checks FILE" in missing.stderr
