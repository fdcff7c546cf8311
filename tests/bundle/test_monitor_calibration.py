"""Monitoring is calibrated on the reference: `pipespec monitor` on every dataset option's own
raw training file, and on its valid and test splits, finds no drift (exit 0); malformed rows
are violations, unusual values are rates compared with the reference's own.

One small bundle per dataset option, built by running the training pipeline's stages
in this process (the stage functions DVC would run, without a process and DVC's bookkeeping
per stage), then `pipespec monitor` through the CLI's own entry point, in-process too. The
shifted-feature cases (summer against winter) live in test_monitor.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import copy_template_project, shared
from pipespec.bundle.bundle import Bundle
from pipespec.cli.main import main
from pipespec.engine.generate import generate, write
from pipespec.engine.project import Project
from pipespec.engine.stage_process import run_stage
from pipespec.stages.context import ParamsView

# dataset option, a file it needs (None: the embedded generator)
OPTIONS = [
    ("default", None),
    ("adult", ("adult", "adult.data")),
    ("telco", ("telco_churn",)),
    ("titanic", ("titanic", "train.csv")),
    ("house_prices", ("house_prices", "train.csv")),
    ("bike_sharing", ("bike_sharing", "hour.csv")),
    ("california_housing", ("california_housing",)),
    ("cta_ridership", ("cta_ridership",)),
    ("lightgbm_binary", ("lightgbm_examples", "binary_classification")),
    ("lightgbm_regression", ("lightgbm_examples", "regression")),
    ("lightgbm_multiclass", ("lightgbm_examples", "multiclass_classification")),
]
TRAINING = ("load", "validate", "split", "featurize", "train", "package")
SMALL_OVERRIDES = ("model.num_boost_round=20", "dataset.rows=3000")


def _train(root: Path, option: str) -> Project:
    """The training stages of the template project, in this process: params.yaml, then each
    stage function as `pipespec stage NAME` runs it."""
    copy_template_project(root)
    project = Project(root)
    overrides = (f"dataset={option}", SMALL_OVERRIDES[0])
    if option == "default":
        overrides += SMALL_OVERRIDES[1:]
    write(project, generate(project, overrides))
    for name in TRAINING:
        run_stage(project, name)
    return project


def _raw_file(project: Project) -> Path:
    """The dataset's raw training file (dataset.path); the load stage's table for the
    embedded generator, which has no file."""
    from pipespec.engine.stage_process import load_params

    dataset = ParamsView(load_params(project), ("dataset",), "test")["dataset"]
    if dataset["source"] == "embedded":
        return project.root / "data" / "load" / "data.parquet"
    return Path(dataset["path"])


@pytest.mark.parametrize(("option", "needs"), OPTIONS, ids=[o for o, _ in OPTIONS])
def test_monitor_passes_the_reference_data(tmp_path: Path, option: str, needs, capsys) -> None:
    if needs:
        shared(*needs)
    start = time.perf_counter()
    project = _train(tmp_path / "proj", option)
    bundle = Bundle.load(project.root / "models" / "bundle")
    calibration = bundle.profile["calibration"]
    assert calibration["source"] == "valid"
    assert calibration["rows"] == len(pd.read_parquet(project.root / "data/split/valid.parquet"))
    trained = time.perf_counter() - start
    files = {
        "raw": _raw_file(project),
        "valid": project.root / "data" / "split" / "valid.parquet",
        "test": project.root / "data" / "split" / "test.parquet",
    }
    for label, current in files.items():
        out = tmp_path / f"report-{label}"
        code = main(
            ["monitor", "--bundle", str(bundle.path), "--current", str(current),
             "--report", str(out)]
        )  # fmt: skip
        captured = capsys.readouterr()
        report = json.loads(out.with_suffix(".json").read_text())
        assert code == 0, (label, report["alerts"], captured.err)
        assert report["status"] == "ok"
        assert report["violations"]["rows"] == 0, (label, report["violations"])
        assert "unusual" in report
        html = out.with_suffix(".html").read_text()
        assert "Unusual values" in html
        assert "Schema violations" in html
    print(f"{option}: trained in {trained:.1f}s, total {time.perf_counter() - start:.1f}s")
