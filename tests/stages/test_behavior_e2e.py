"""Behaviour checks on real data: UCI Adult (../shared/data), a 4,000-row training sample.

One project, two runs: the first with a monotone constraint on `age`, the second with the
constraint removed (a params change), so `dvc metrics diff` shows the behaviour metrics move."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import commit_all, run_cli, run_tool, shared

pytestmark = pytest.mark.slow

RUN = (
    "dataset=adult",
    "behavior=adult",
    "dataset.sample.fraction=null",
    "dataset.sample.rows=4000",
    "model.num_boost_round=60",
    "features.drop=[fnlwgt]",  # a column the model does not use
    '+evaluation.gates.behavior.slices.female.auc=">= 0.80"',  # the gate reads a behaviour metric
)
CONSTRAINT = "+model.params.monotone_constraints={age:1}"
CHECKS = """\
name: adult
rows: 8000
enforce: false  # report the failures; the second run's violations must not stop the pipeline
slices:
  female: {column: sex, values: [Female], bounds: {auc: ">= 0.80"}, max_gap: {auc: 0.05}}
  male: {column: sex, values: [Male], max_gap: {accuracy: 0.01}}
invariance:
  fnlwgt_noise: {column: fnlwgt, noise: 0.5, tolerance: 0.0}
  fnlwgt_set: {column: fnlwgt, value: 100000, tolerance: 0.0}
directional:
  older: {column: age, shift: 15, direction: up, max_violation_rate: 0.0}
cases:
  path: cases.csv
latency:
  records: 50
  batches: 5
  single_p99_ms: 500
  batch_p99_ms: 5000
"""
CASES = """\
case,age,workclass,fnlwgt,education,education-num,marital-status,occupation,relationship,race,\
sex,capital-gain,capital-loss,hours-per-week,native-country,expected_label,expected_min,\
expected_max
young part-time student,19,Private,200000,Some-college,10,Never-married,Sales,Own-child,White,\
Male,0,0,15,United-States,<=50K,,0.1
married executive with capital gains,45,Private,150000,Masters,14,Married-civ-spouse,\
Exec-managerial,Husband,White,Male,15024,0,50,United-States,>50K,0.8,
"""


def _behavior(root: Path) -> dict[str, Any]:
    return json.loads((root / "metrics" / "behavior.json").read_text())["behavior"]


def _checks(root: Path) -> dict[str, dict[str, Any]]:
    report = json.loads((root / "reports" / "behavior" / "report.json").read_text())
    return {f"{c['kind']}:{c['name']}:{c['measure']}": c for c in report["checks"]}


@pytest.fixture(scope="module")
def adult(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    shared("adult", "adult.data")
    base = tmp_path_factory.mktemp("adult_behavior")
    root = base / "proj"
    run_cli("init", str(root), cwd=base)
    (root / "configs" / "behavior" / "adult.yaml").write_text(CHECKS)
    (root / "cases.csv").write_text(CASES)
    first = run_cli("run", *RUN, CONSTRAINT, cwd=root)
    result = {"root": root, "first": first, "constrained": (_behavior(root), _checks(root))}
    commit_all(root, "adult with a monotone constraint on age")
    second = run_cli("run", *RUN, cwd=root)
    result.update(second=second, free=(_behavior(root), _checks(root)))
    return result


def test_slice_bound_and_gap_on_sex_one_holds_one_fails(adult: dict[str, Any]) -> None:
    metrics, checks = adult["constrained"]
    female = checks["slice:female:auc"]
    assert female["passed"]
    assert female["value"] == metrics["slices"]["female"]["auc"] >= 0.80
    assert checks["slice:female:gap_auc"]["passed"]
    male = checks["slice:male:gap_accuracy"]
    assert not male["passed"]
    gap = metrics["overall"]["accuracy"] - metrics["slices"]["male"]["accuracy"]
    assert male["value"] == pytest.approx(gap, abs=2e-6)
    assert male["value"] > 0.01
    message = (
        r"slice 'male' \(sex in \['Male'\]; overall accuracy 0\.\d+, slice 0\.\d+\): "
        r"gap_accuracy = 0\.\d+, required <= 0\.01"
    )
    assert re.search(message, male["message"])
    shown = adult["first"].stderr.replace("\n", " ")
    assert "behavior.enforce is false" in shown
    assert "behaviour (behavior): " in adult["first"].stderr  # the run summary's verdict


def test_monotone_constraint_is_checked_and_its_absence_caught(adult: dict[str, Any]) -> None:
    metrics, checks = adult["constrained"]
    derived = checks["directional:monotone_age:violation_rate"]
    assert derived["passed"]
    assert "(monotone constraint)" in derived["subject"]
    assert metrics["directional"]["monotone_age"]["derived"] == 1
    assert metrics["directional"]["monotone_age"]["rows"] > 7000
    assert checks["directional:older:violation_rate"]["passed"]

    free_metrics, free = adult["free"]
    assert "directional:monotone_age:violation_rate" not in free  # no constraint, no check
    older = free["directional:older:violation_rate"]
    assert not older["passed"]
    assert older["value"] == free_metrics["directional"]["older"]["violation_rate"] > 0
    assert "directional 'older' (age +15: prediction must not go down)" in older["message"]


def test_invariance_on_an_unused_column_cases_and_latency(adult: dict[str, Any]) -> None:
    metrics, checks = adult["constrained"]
    for name in ("fnlwgt_noise", "fnlwgt_set"):
        assert checks[f"invariance:{name}:violation_rate"]["passed"]
        assert metrics["invariance"][name]["max_change"] == 0.0
        assert metrics["invariance"][name]["rows"] > 7000
    assert metrics["cases"] == {"total": 2, "failed": 0, "failure_rate": 0.0}
    for name in ("single_p99", "batch_p99"):
        assert checks[f"latency:{name}:p99_ms"]["passed"]
    assert re.search(r"latency single \(1 row\(s\), 50 calls\): p50 [\d.]+ ms, p99 [\d.]+ ms",
                     adult["first"].stderr)  # fmt: skip
    gate = json.loads((adult["root"] / "metrics" / "gate.json").read_text())
    assert gate["gates"][0]["metric"] == "behavior.slices.female.auc"
    assert gate["gates"][0]["passed"]


def test_dvc_metrics_diff_shows_the_behaviour_metrics(adult: dict[str, Any]) -> None:
    root = adult["root"]
    proc = run_tool("dvc", "metrics", "diff", "--json", cwd=root)
    diff = json.loads(proc.stdout)["metrics/behavior.json"]
    older = diff["behavior.directional.older.violation_rate"]
    assert older["old"] == 0.0
    assert older["new"] == adult["free"][0]["directional"]["older"]["violation_rate"] > 0
    assert "behavior.slices.female.auc" in diff
    shown = run_tool("dvc", "metrics", "diff", cwd=root).stdout
    assert "behavior.directional.older.violation_rate" in shown


def test_pipespec_test_on_adult_exits_9_naming_the_failures(adult: dict[str, Any]) -> None:
    root = adult["root"]
    proc = run_cli(
        "test", "--bundle", "models/bundle", "data/split/test.parquet", cwd=root, check=False
    )
    assert proc.returncode == 10, proc.stderr
    message = proc.stderr.replace("\n", " ")
    assert "2 behaviour check(s) failed" in message
    assert "slice 'male'" in message
    assert "directional 'older' (age +15: prediction must not go down)" in message
