"""compute=dask end to end on a LocalCluster of 2 workers (real Dask, real lightgbm.dask,
real DVC): the same configs as locally, metrics within a small tolerance of the local run,
Parquet directories between stages, a bundle that predicts like the local one, a model that
is the same when trained again, validation failures with global row numbers, bad settings."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from helpers import run_cli, run_tool, shared

pytestmark = pytest.mark.slow

ADULT = ("adult", "adult.data")
TELCO = ("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
DASK = ("compute=dask", "compute.workers=2", "compute.memory_limit=2GiB")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _metrics(root: Path) -> dict:
    return json.loads((root / "metrics" / "evaluate.json").read_text())


def _table(path: Path) -> pd.DataFrame:
    """A stage's table (a file, or a directory of parts in order), with plain dtypes."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    for column in frame.columns:
        if frame[column].dtype != "float64":  # text and labels: one kind of missing value
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def test_adult_on_dask_matches_local_and_bundles_alike(new_project, tmp_path: Path) -> None:
    shared(*ADULT)
    root = new_project()
    args = ("dataset=adult", "dataset.sample.fraction=0.6", "dataset.sample.rows=null",
            "model.num_boost_round=60")  # fmt: skip
    run_cli("run", *args, cwd=root)
    local = _metrics(root)
    local_transforms = (root / "models" / "featurize" / "transforms.json").read_text()
    local_tables = {
        name: _table(root / "data" / "split" / f"{name}.parquet")
        for name in ("train", "valid", "test")
    }
    local_bundle = tmp_path / "local-bundle"
    (root / "models" / "bundle").rename(local_bundle)

    proc = run_cli("run", *args, *DASK, "compute.partition_rows=8000", cwd=root)
    out = proc.stdout + proc.stderr
    assert "lightgbm.dask on 2 workers" in out
    assert "[LightGBM] [Info]" not in out  # the workers' network chatter stays out
    loaded = root / "data" / "load" / "data.parquet"
    assert loaded.is_dir()
    assert len(list(loaded.glob("part.*.parquet"))) >= 3
    # the workers' MD5 of their parts went to DVC's state, and no file of them is left
    assert sorted(p.name for p in loaded.iterdir()) == sorted(
        p.name for p in loaded.glob("part.*.parquet")
    )
    assert (root / "data" / "featurize" / "train.parquet").is_dir()
    # One algorithm for both backends: the same sampled rows in the same splits, row for
    # row, and so the same transforms document, byte for byte.
    for name, table in local_tables.items():
        on_dask = _table(root / "data" / "split" / f"{name}.parquet")
        pd.testing.assert_frame_equal(on_dask, table, check_dtype=False)
    sampled = sum(len(t) for name, t in local_tables.items() if name != "test")
    assert 0.57 < sampled / 32561 < 0.63  # adult.data's rows, sampled; adult.test whole
    assert len(local_tables["test"]) > 16000
    dask_transforms = (root / "models" / "featurize" / "transforms.json").read_text()
    assert dask_transforms == local_transforms

    on_dask = _metrics(root)
    for metric, tolerance in (("auc", 0.01), ("logloss", 0.02), ("accuracy", 0.01)):
        assert abs(on_dask["test"][metric] - local["test"][metric]) <= tolerance, (metric, local)
    assert on_dask["test"]["auc"] > 0.9

    # The bundle is the same kind of bundle: it predicts a raw file like the local one.
    rows = pd.read_parquet(root / "data" / "split" / "test.parquet").head(2000)
    rows.drop(columns=["income"]).to_parquet(tmp_path / "rows.parquet")
    for name, bundle in (("dask", root / "models" / "bundle"), ("local", local_bundle)):
        run_cli(
            "predict", "--bundle", str(bundle), str(tmp_path / "rows.parquet"),
            str(tmp_path / f"{name}.parquet"), cwd=root,
        )  # fmt: skip
    by_dask = pd.read_parquet(tmp_path / "dask.parquet")["prediction"]
    by_local = pd.read_parquet(tmp_path / "local.parquet")["prediction"]
    assert len(by_dask) == 2000
    assert by_dask.corr(by_local) > 0.97

    # Trained again (a stage process with a LocalCluster of its own): the same model file.
    model = root / "models" / "train" / "model.txt"
    before = _md5(model)
    assert "machines: ]" in model.read_text()  # no random ports in the file
    run_cli("stage", "train", cwd=root)
    assert _md5(model) == before


def test_telco_quarantine_on_dask_keeps_global_row_numbers(new_project) -> None:
    csv = shared(*TELCO)
    root = new_project()
    telco = (
        "dataset=csv", f"dataset.path={csv}", "dataset.target=Churn", "dataset.task=binary",
        "dataset.sample.fraction=null", "schema=telco", *DASK, "compute.partition_rows=1500",
    )  # fmt: skip
    # Dask infers a CSV's column types from its first block; TotalCharges' blanks come later.
    run_cli("compose", *telco, cwd=root)
    proc = run_tool("dvc", "repro", "load", cwd=root, check=False)
    assert proc.returncode != 0
    assert "'TotalCharges' change type further down the file" in proc.stderr
    assert "+dataset.dtypes.TotalCharges=str" in proc.stderr
    assert not (root / "data" / "load" / "data.parquet").exists()
    assert not list((root / "data" / "load").glob(".*.tmp"))

    run_cli("compose", *telco, "+dataset.dtypes.TotalCharges=str", cwd=root)
    proc = run_tool("dvc", "repro", "validate", cwd=root)
    assert "quarantined 11 of 7,043 rows" in proc.stdout + proc.stderr
    raw = pd.read_csv(csv)
    blanks = raw.index[raw["TotalCharges"] == " "]
    quarantine = pd.read_parquet(root / "data" / "validate" / "quarantine.parquet")
    assert sorted(quarantine["_row"]) == sorted(blanks)  # numbers in the loaded table
    assert sorted(quarantine["customerID"]) == sorted(raw.loc[blanks, "customerID"])
    report = json.loads((root / "data" / "validate" / "report.json").read_text())
    assert report["outcome"] == "quarantined"
    assert report["failing_rows"] == 11
    assert report["rows_passed_on"] == 7043 - 11
    assert sorted(report["failures"][0]["rows"]) == sorted(int(i) for i in blanks)
    data = pd.read_parquet(root / "data" / "validate" / "data.parquet")
    assert len(data) == 7032
    assert data["TotalCharges"].dtype == "float64"

    # Under policy=fail the stage fails, names the check, and leaves no validated table.
    run_cli("compose", *telco, "+dataset.dtypes.TotalCharges=str", "schema.policy=fail", cwd=root)
    proc = run_tool("dvc", "repro", "validate", cwd=root, check=False)
    assert proc.returncode != 0
    assert re.search(r"11 of 7,043 rows break schemas/telco\.yaml", proc.stdout + proc.stderr)
    assert not (root / "data" / "validate" / "data.parquet").exists()
    assert not list((root / "data" / "validate").glob(".*.tmp"))


def test_unreachable_scheduler_names_compute_address(new_project) -> None:
    root = new_project()
    run_cli("compose", *DASK, "compute.address=tcp://127.0.0.1:9", cwd=root)
    proc = run_cli("stage", "load", cwd=root, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 (compute.address)" in proc.stderr
    assert not (root / "data" / "load" / "data.parquet").exists()
