"""`pipespec monitor` on real data: a model trained on bike-sharing summer months flags winter
months and passes an i.i.d. resample of summer; the same check runs as a stage of a
`pipelines/monitor.yaml` pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import read_yaml, run_cli, shared

pytestmark = pytest.mark.slow

SUMMER, WINTER = (6, 7, 8), (12, 1, 2)
MONITOR_PIPELINE = """\
# Drift of new data against the bundle the training pipeline packaged.
stages:
  monitor:
    kind: monitor
    inputs:
      bundle: package.bundle
      current: {current}
"""


@pytest.fixture(scope="module")
def bike(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project trained on the summer months of the hourly bike-sharing data."""
    hours = pd.read_csv(shared("bike_sharing", "hour.csv"))
    base = tmp_path_factory.mktemp("bike")
    summer = hours[hours["mnth"].isin(SUMMER)]
    winter = hours[hours["mnth"].isin(WINTER)]
    summer.to_csv(base / "summer.csv", index=False)
    winter.to_csv(base / "winter.csv", index=False)
    summer.sample(n=1500, replace=True, random_state=7).to_csv(base / "resample.csv", index=False)
    root = base / "proj"
    run_cli("init", str(root), cwd=base)
    run_cli(
        "run",
        "dataset=csv",
        f"dataset.path={base / 'summer.csv'}",
        "dataset.target=cnt",
        "dataset.task=regression",
        "dataset.drop=[instant,dteday,casual,registered]",
        "features.categorical=[season,weathersit]",
        "model.num_boost_round=40",
        cwd=root,
    )
    return root


def monitor(root: Path, current: Path, *args: str):
    bundle = root / "models" / "bundle"
    return run_cli(
        "monitor", "--bundle", str(bundle), "--current", str(current), *args,
        cwd=root.parent, check=False,
    )  # fmt: skip


def test_winter_drifts_from_summer(bike: Path) -> None:
    proc = monitor(bike, bike.parent / "winter.csv", "--report", "winter.html")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "error: drift:" in proc.stderr
    report = json.loads((bike.parent / "winter.json").read_text())
    assert report["status"] == "drift"
    by_name = {f["name"]: f for f in report["features"]}
    for name in ("temp", "atemp", "mnth", "season"):
        assert by_name[name]["drift"], name
        assert by_name[name]["psi"] > 0.2, (name, by_name[name]["psi"])
    assert by_name["temp"]["test"] == "ks"
    assert by_name["temp"]["pvalue"] < 1e-6
    assert by_name["season"]["test"] == "chi2"
    # winter seasons were never seen: unusual values, not violations, and well above the
    # reference's own rate
    assert "season" not in report["violations"]["by_column"]
    assert report["unusual"]["by_column"]["season"]["unseen_category"]["alert"]
    assert any("unseen category" in a and "unusual_margin" in a for a in report["alerts"])
    assert report["prediction"]["psi"] is not None
    assert any("feature 'temp': PSI" in a for a in report["alerts"])
    html = (bike.parent / "winter.html").read_text()
    assert '<p class="status bad">DRIFT</p>' in html
    assert "temp" in html
    assert "temp" in proc.stdout  # the table on screen


def test_iid_resample_passes(bike: Path) -> None:
    proc = monitor(bike, bike.parent / "resample.csv", "--report", "resample")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no drift" in proc.stderr
    report = json.loads((bike.parent / "resample.json").read_text())
    assert report["status"] == "ok"
    assert report["alerts"] == []
    assert max(f["psi"] for f in report["features"]) < 0.1
    assert report["violations"]["rate"] < 0.01
    assert report["prediction"]["psi"] < 0.1
    # a stricter threshold from the command line turns the same data into an alert
    strict = monitor(bike, bike.parent / "resample.csv", "--threshold", "psi=0.000001")
    assert strict.returncode == 8
    bad = monitor(bike, bike.parent / "resample.csv", "--threshold", "psy=0.1")
    assert bad.returncode == 2
    assert "unknown monitor threshold 'psy'" in bad.stderr


def test_monitor_as_a_pipeline_stage(bike: Path) -> None:
    """A `pipelines/monitor.yaml` stage: metrics for DVC, reports, and a failing run on drift."""
    current = bike / "data" / "current.csv"
    current.parent.mkdir(parents=True, exist_ok=True)
    current.write_bytes((bike.parent / "resample.csv").read_bytes())
    (bike / "pipelines" / "monitor.yaml").write_text(
        MONITOR_PIPELINE.format(current="data/current.csv")
    )
    overrides = (
        "dataset=csv",
        f"dataset.path={bike.parent / 'summer.csv'}",
        "dataset.target=cnt",
        "dataset.task=regression",
        "dataset.drop=[instant,dteday,casual,registered]",
        "features.categorical=[season,weathersit]",
        "model.num_boost_round=40",
    )
    proc = run_cli("run", *overrides, cwd=bike, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ran: monitor" in proc.stderr
    stage = read_yaml(bike / "dvc.yaml")["stages"]["monitor"]
    assert stage["params"] == ["production.monitor"]
    assert "models/bundle" in stage["deps"]
    assert "data/current.csv" in stage["deps"]
    metrics = json.loads((bike / "metrics" / "monitor.json").read_text())
    assert metrics["drift"] == 0
    assert (bike / "reports" / "monitor" / "report.html").is_file()

    current.write_bytes((bike.parent / "winter.csv").read_bytes())  # new data arrives
    proc = run_cli("run", *overrides, cwd=bike, check=False)
    assert proc.returncode != 0
    assert "drift:" in proc.stderr
    assert "feature 'temp': PSI" in proc.stderr
