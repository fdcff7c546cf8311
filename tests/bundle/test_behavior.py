"""Behaviour checks on the session's trained project: the behavior stage's outputs, the checks
run in-process on its bundle and raw test rows (real LightGBM), and `pipespec test`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import run_cli
from pipespec.bundle import behavior
from pipespec.bundle.bundle import Bundle
from pipespec.core.errors import ConfigError
from pipespec.stages.parquet import read_table


@pytest.fixture(scope="module")
def checked(trained_project: Path) -> tuple[Bundle, Any]:
    bundle = Bundle.load(trained_project / "models" / "bundle")
    frame, _ = read_table(trained_project / "data" / "split" / "test.parquet")
    return bundle, frame


def _run(checked: tuple[Bundle, Any], trained_project: Path, **spec: Any) -> dict[str, Any]:
    bundle, frame = checked
    base = {"name": "t", "search": {"enabled": False}, "latency": {"enabled": False}}
    cfg = behavior.spec_from({**base, **spec}, where="test")
    return behavior.run_checks(bundle, frame, cfg, base=trained_project, source="test").to_json()


def _check(report: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["kind"] == kind and c["name"] == name)


def test_stage_writes_metrics_reports_and_card(trained_project: Path) -> None:
    metrics = json.loads((trained_project / "metrics" / "behavior.json").read_text())["behavior"]
    assert metrics["passed"] == 1
    assert metrics["failed"] == 0
    assert metrics["checks"] >= 7  # slices, invariance, directional x2, cases, latency x2
    slice_ = metrics["slices"]["month_to_month"]
    assert slice_["rows"] > 30
    assert slice_["gap_auc"] == pytest.approx(metrics["overall"]["auc"] - slice_["auc"], abs=2e-6)
    assert 0 <= metrics["invariance"]["region"]["violation_rate"] <= 0.05
    assert metrics["cases"]["total"] == 2
    report = json.loads((trained_project / "reports" / "behavior" / "report.json").read_text())
    assert "p50_ms" not in json.dumps(report["latency"])  # timings stay out of DVC's files
    bundle = Bundle.load(trained_project / "models" / "bundle")
    assert report["bundle"]["sha256"] == bundle.sha
    html = (trained_project / "reports" / "behavior" / "report.html").read_text()
    assert "Behaviour report" in html
    assert "month_to_month" in html
    card = (trained_project / "reports" / "behavior" / "card.md").read_text()
    assert card.startswith(f"# Model card: {bundle.card['name']}")
    assert "## Behaviour checks" in card
    assert bundle.sha[:16] in card
    gate = json.loads((trained_project / "metrics" / "gate.json").read_text())
    assert gate["gates_failed"] == 0


def test_failed_checks_name_the_check_the_subject_the_value_and_the_bound(
    checked, trained_project: Path
) -> None:
    report = _run(
        checked,
        trained_project,
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
    bound = _check(report, "slice", "two_year")
    assert not bound["passed"]
    assert re.fullmatch(
        r"slice 'two_year' \(contract in \['two-year'\]\): auc = 0\.\d+, required >= 0\.99",
        bound["message"],
    )
    invariance = _check(report, "invariance", "contract")
    assert not invariance["passed"]
    assert invariance["value"] > 0.3  # the contract drives churn: most predictions move
    assert "contract set to 'two-year'" in invariance["message"]
    wrong = _check(report, "directional", "wrong_way")
    assert not wrong["passed"]
    assert wrong["value"] > 0.3
    assert "tenure_months +24: prediction must not go down" in wrong["message"]
    error = behavior.failure_error(report)
    assert error.exit_code == 10
    assert "3 behaviour check(s) failed" in error.message


def test_same_bundle_data_and_seed_give_the_same_report(checked, trained_project: Path) -> None:
    spec = {
        "invariance": {"noise": {"column": "monthly_charges", "noise": 0.5, "tolerance": 0.001}},
        "search": {"enabled": True, "min_rows": 20, "top": 3},
    }
    first = _run(checked, trained_project, **spec)
    assert first == _run(checked, trained_project, **spec)
    assert len(first["search"]["weakest"]) == 3
    gaps = [s["gap"] for s in first["search"]["weakest"]]
    assert gaps == sorted(gaps, reverse=True)
    other = _run(checked, trained_project, seed=7, **spec)
    assert other["invariance"]["noise"] != first["invariance"]["noise"]  # other noise drawn


def test_bins_cases_and_latency(checked, trained_project: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    source = (trained_project / "configs" / "behavior" / "default_cases.csv").read_text()
    header, *rows = source.strip().splitlines()
    # malformed (a word for a number) is refused; unusual (an unseen category) is predicted
    broken = rows[0].replace(",60,", ",sixty,").replace("loyal", "bad tenure")
    unseen = rows[0].replace(",two-year,", ",ten-year,").replace("loyal", "unseen contract")
    wrong = rows[1].replace(",,0.5,", ",,0.99,").replace("new month", "impossible month")
    cases.write_text("\n".join([header, *rows, broken, unseen, wrong]) + "\n")
    report = _run(
        checked,
        trained_project,
        slices={"tenure": {"column": "tenure_months", "bins": 3, "max_gap": {"auc": 1.0}}},
        cases={"path": str(cases), "max_failure_rate": 0.0},
        latency={"records": 20, "batches": 3, "batch_rows": 50, "single_p99_ms": 1e-6},
    )
    bins = report["slices"]["tenure"]
    assert list(bins) == ["q1", "q2", "q3"]
    assert sum(b["rows"] for b in bins.values()) == report["overall"]["rows"]
    failures = {f["case"]: f["reason"] for f in report["cases"]["failures"]}
    assert set(failures) == {"bad tenure two-year customer", "impossible month-to-month fiber "
                             "customer with complaints"}  # fmt: skip
    assert "refused" in failures["bad tenure two-year customer"]
    assert "tenure_months" in failures["bad tenure two-year customer"]
    assert (
        "expected >= 0.99" in failures["impossible month-to-month fiber customer with complaints"]
    )
    latency = _check(report, "latency", "single_p99")
    assert not latency["passed"]
    assert latency["value"] == report["latency"]["single"]["p99_ms"] > 0
    stable = behavior.stable(report)
    assert "p99_ms" not in stable["latency"]["single"]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"slices": {"a": {"colum": "x"}}}, r"behavior\.slices\.a\.colum in t: unknown key"),
        (
            {"slices": {"a": {"column": "x", "values": [1], "bins": 3, "max_gap": {"auc": 1}}}},
            "behavior.slices.a in t: give exactly one of values, min/max or bins",
        ),
        ({"slices": {"a": {"column": "x", "values": [1]}}}, "give bounds, max_gap or both"),
        (
            {"slices": {"a": {"column": "x", "values": [1], "bounds": {"auc": "high"}}}},
            "behavior.slices.a.bounds.auc: cannot read bound 'high'",
        ),
        ({"invariance": {"a": {"column": "x"}}}, "behavior.invariance.a in t: give exactly one"),
        (
            {"directional": {"a": {"column": "x", "shift": 1, "direction": "sideways"}}},
            "behavior.directional.a.direction in t: 'sideways' is not one of up, down",
        ),
        ({"directional": {"a": {"column": "x", "shift": 1}}}, r"direction in t: a value is req"),
        ({"rows": "many"}, r"behavior\.rows in t: expected a number"),
    ],
)
def test_bad_checks_name_the_key(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        behavior.spec_from({"name": "t", **spec}, where="t")


def test_checks_on_unknown_columns_or_metrics_name_them(checked, trained_project: Path) -> None:
    unknown = r"(?s)behavior\.invariance\.r\.column: no column 'regon'.*Did you mean 'region'"
    with pytest.raises(ConfigError, match=unknown):
        _run(checked, trained_project, invariance={"r": {"column": "regon", "value": "x"}})
    with pytest.raises(ConfigError, match="no metric 'rmse' for a binary model"):
        _run(checked, trained_project, slices={
            "s": {"column": "region", "values": ["north"], "bounds": {"rmse": "< 1"}}})  # fmt: skip


def test_pipespec_test_on_a_serving_host_exits_9_naming_the_failure(
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
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["checks_failed"] == 1
    assert written["latency"]["single"]["p99_ms"] > 0  # the host's report keeps the timings
    assert (tmp_path / "out.html").is_file()
    missing = run_cli("test", "--bundle", str(bundle), str(data), cwd=tmp_path, check=False)
    assert missing.returncode == 2
    assert "no checks: give --checks FILE" in missing.stderr


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("behavior.slices.month_to_month.colum=x", r"behavior\.slices\.month_to_month\.colum"),
        ("behavior.directional.longer_tenure.direction=sideways", r"sideways"),
        ("behavior.search.bins=many", r"behavior\.search\.bins"),
    ],
)
def test_bad_behaviour_config_fails_at_composition(
    tmp_path: Path, override: str, match: str
) -> None:
    from helpers import copy_template_project
    from pipespec.engine.compose import compose
    from pipespec.engine.project import Project

    with pytest.raises(ConfigError, match=match):
        compose(Project(copy_template_project(tmp_path)), (override,))


def test_monotone_constraints_as_a_list_follow_the_model_features(checked) -> None:
    import dataclasses

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


def test_monotone_constraints_by_name_become_lightgbm_s_list() -> None:
    from pipespec.stages.training import monotone_by_name

    params = {"monotone_constraints": {"b": 1, "c": -1}}
    monotone_by_name(params, ["a", "b", "c"])
    assert params["monotone_constraints"] == [0, 1, -1]
    with pytest.raises(ConfigError, match=r"model\.params\.mc: no feature 'tenure'.*"):
        monotone_by_name({"mc": {"tenure": 1}}, ["tenure_months", "age"])
    with pytest.raises(ConfigError, match=r"values must be -1, 0 or 1"):
        monotone_by_name({"mc": {"age": 2}}, ["age"])


def test_data_the_bundle_cannot_read_is_refused_naming_the_field(
    checked, trained_project: Path
) -> None:
    from pipespec.core.errors import DataError

    bundle, frame = checked
    spec = behavior.spec_from({"name": "t"}, where="t")
    match = rf"(?s){len(frame)} row\(s\) of the data \(x\.csv\).*contract"
    with pytest.raises(DataError, match=match):
        behavior.run_checks(
            bundle, frame.drop(columns=["contract"]), spec, base=trained_project, source="x.csv"
        )


def test_pipespec_diff_reads_behaviour_metrics_the_right_way_round() -> None:
    from pipespec.engine.diff import MetricChange

    def verdict(key: str, old: float, new: float) -> str:
        return MetricChange("metrics/behavior.json", f"behavior.{key}", old, new).verdict

    assert verdict("directional.older.violation_rate", 0.0, 0.27) == "worse"
    assert verdict("slices.male.gap_accuracy", 0.05, 0.03) == "better"
    assert verdict("slices.female.auc", 0.90, 0.93) == "better"
    assert verdict("failed", 0, 2) == "worse"
    assert verdict("slices.female.rows", 100, 120) == ""


def test_perturbations_scored_together_equal_each_copy_predicted_whole(checked) -> None:
    """`_Runner.perturbed` scores only the rows a perturbation changed, all perturbations in
    one batch: its predictions are exactly those of each perturbed copy predicted whole,
    including a column of another type (integers become nullable), a value that refuses
    every row (text in a numeric column), and one that changes nothing."""
    import numpy as np
    import pandas as pd

    bundle, frame = checked
    frame = frame.iloc[:800].reset_index(drop=True)
    cfg = behavior.spec_from({"name": "t"}, where="test")
    report = behavior.Report(bundle={}, data={"source": "t"}, task=bundle.task, seed=0)
    runner = behavior._Runner(bundle, frame, cfg, report, str(bundle.output.target))
    tenure = frame["tenure_months"]
    changes = [
        ("region", behavior._fill(frame["region"], "north")),
        ("tenure_months", behavior._like(tenure.to_numpy(dtype=float) + 12, tenure)),
        ("support_calls", pd.Series(["oops"] * len(frame), dtype=object)),
        ("contract", frame["contract"].copy()),
    ]
    got = runner.perturbed(changes)
    for (column, values), new in zip(changes, got, strict=True):
        whole = frame.copy()
        whole[column] = values
        expected = runner.predict(whole)
        pd.testing.assert_frame_equal(new, expected, check_exact=True)
    assert got[2].empty  # text where a number must be: every row refused
    assert np.array_equal(got[3].to_numpy(), runner.base.to_numpy())  # nothing changed
