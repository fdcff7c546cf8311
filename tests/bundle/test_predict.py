"""`pipespec predict`, in-process prediction, the HTTP service and the evaluate stage agree
exactly on the same rows; batch prediction streams in chunks, validates, and fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv
import pytest
from bundle_helpers import Server, records

from helpers import run_cli
from pipespec.bundle.bundle import Bundle

pytestmark = pytest.mark.slow
TARGET = "churned"


@pytest.fixture(scope="module")
def rows(trained_project: Path) -> pd.DataFrame:
    """The raw test split: the rows the evaluate stage scored as 'test'."""
    return pd.read_parquet(trained_project / "data" / "split" / "test.parquet")


@pytest.fixture(scope="module")
def evaluated(trained_project: Path) -> pd.Series:
    """The evaluate stage's predictions for the test split, by row."""
    frame = pd.read_parquet(trained_project / "data" / "evaluate" / "predictions.parquet")
    return frame[frame["split"] == "test"].set_index("row")["prediction"]


def test_predict_serve_and_evaluate_agree_exactly(
    rows: pd.DataFrame,
    evaluated: pd.Series,
    bundle_dir: Path,
    bundle_server: Server,
    tmp_path: Path,
) -> None:
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    proc = run_cli(
        "predict",
        "--bundle",
        str(bundle_dir),
        "rows.parquet",
        "out.parquet",
        "--on-invalid",
        "skip",
        "--rejects",
        "rejects.csv",
        "--keep",
        TARGET,
        cwd=tmp_path,
    )
    assert "rows/s" in proc.stderr
    out = pd.read_parquet(tmp_path / "out.parquet")
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    # The test split may hold a few values the training split never showed (e.g. a missing
    # total_charges, depending on the split): unusual, not malformed. They are predicted, as
    # LightGBM treats them, and flagged; nothing is refused. (Unusual rows made on purpose:
    # test_malformed_rows_fail_the_run_and_unusual_rows_are_flagged.)
    assert set(rejects["kind"]) <= {"warning"}
    flagged = set(rejects["row"])
    assert len(flagged) <= 0.03 * len(rows)
    assert out["row"].tolist() == list(range(len(rows)))
    assert set(out.loc[out["warnings"].notna(), "row"]) == flagged
    valid = out["row"].to_numpy()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), evaluated.loc[valid].to_numpy())
    np.testing.assert_array_equal(out[TARGET].to_numpy(), rows[TARGET].to_numpy()[valid])
    output = Bundle.load(bundle_dir).output
    threshold, classes = output.threshold, output.classes
    assert threshold is not None
    assert classes is not None
    expected_label = np.where(out["prediction"] >= threshold, classes[1], classes[0])
    assert out["label"].tolist() == expected_label.tolist()

    # CSV in, CSV out: the same numbers (floats are written and read back exactly)
    run_cli(
        "predict", "--bundle", str(bundle_dir), "rows.csv", "out.csv", "--on-invalid", "skip",
        cwd=tmp_path,
    )  # fmt: skip
    csv = pcsv.read_csv(tmp_path / "out.csv").to_pandas()
    assert csv["row"].tolist() == out["row"].tolist()
    np.testing.assert_array_equal(csv["prediction"].to_numpy(), out["prediction"].to_numpy())

    # in-process
    inproc = Bundle.load(bundle_dir).predict(rows, on_invalid="skip")
    assert inproc.index.tolist() == valid.tolist()
    np.testing.assert_array_equal(inproc["prediction"].to_numpy(), evaluated.loc[valid].to_numpy())

    # over HTTP: the whole list in one request, and record by record
    body = records(rows.iloc[valid].drop(columns=[TARGET]))
    answer = bundle_server.client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    served = [p["probability"] for p in answer.json()["predictions"]]
    np.testing.assert_array_equal(np.asarray(served), evaluated.loc[valid].to_numpy())
    # the answer names every unusual value, as batch prediction's rejects file does
    warned = {(w["record"], w["field"], w["reason"]) for w in answer.json()["warnings"]}
    assert warned == {(r.row, r.column, r.reason) for r in rejects.itertuples()}
    for i in (0, 7, len(body) - 1):
        single = bundle_server.client.post("/predict", json=body[i]).json()["prediction"]
        assert single["probability"] == evaluated.loc[valid[i]]
        assert single["label"] == classes[int(evaluated.loc[valid[i]] >= threshold)]
        assert sum(single["probabilities"].values()) == pytest.approx(1)
        assert list(single["probabilities"]) == [str(c) for c in classes]


def test_chunks_and_jsonl_give_the_same_output(
    rows: pd.DataFrame, bundle_dir: Path, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    with open(tmp_path / "rows.jsonl", "w") as fh:
        for record in records(rows):
            fh.write(json.dumps(record) + "\n")
    base = ["predict", "--bundle", str(bundle_dir), "--on-invalid", "skip"]
    run_cli(*base, "rows.parquet", "whole.parquet", cwd=tmp_path)
    run_cli(*base, "rows.parquet", "chunks.parquet", "--chunk-rows", "7", cwd=tmp_path)
    run_cli(*base, "rows.jsonl", "lines.parquet", "--chunk-rows", "50", cwd=tmp_path)
    whole = pd.read_parquet(tmp_path / "whole.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "chunks.parquet"), whole)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "lines.parquet"), whole)


def test_malformed_rows_fail_the_run_and_unusual_rows_are_flagged(
    rows: pd.DataFrame, bundle_dir: Path, tmp_path: Path
) -> None:
    bad = rows.iloc[:40].drop(columns=[TARGET]).reset_index(drop=True).astype(object)
    bad.loc[3, "age"] = "abc"  # malformed: not a number
    bad.loc[5, "region"] = "mars"  # unusual: a category training never saw
    bad.loc[6, "tenure_months"] = 10_000  # unusual: far beyond the training range
    bad.to_csv(tmp_path / "bad.csv", index=False)
    argv = ["predict", "--bundle", str(bundle_dir), "bad.csv", "out.csv"]
    proc = run_cli(*argv, cwd=tmp_path, check=False)
    assert proc.returncode == 4, proc.stderr
    assert "1 row(s) of bad.csv break the bundle's input schema" in proc.stderr
    assert "row 3: field 'age': wrong type: 'abc'" in proc.stderr
    assert "--on-invalid skip" in proc.stderr
    assert not (tmp_path / "out.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]  # no temp file left either

    skipped = run_cli(
        "predict", "--bundle", str(bundle_dir), "bad.csv", "out.csv", "--on-invalid", "skip",
        "--rejects", "rejects.csv", cwd=tmp_path,
    )  # fmt: skip
    assert "predicted 39 of 40 rows" in skipped.stderr
    assert "rows predicted with warnings" in skipped.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["row"].tolist() == [r for r in range(40) if r != 3]
    notes = dict(zip(out["row"], out["warnings"], strict=True))
    assert notes[5] == "region: unseen category"
    assert notes[6] == "tenure_months: out of range"
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    listed = rejects[["row", "column", "kind", "reason"]].values.tolist()
    assert [3, "age", "refused", "wrong type"] in listed
    assert [5, "region", "warning", "unseen category"] in listed
    assert [6, "tenure_months", "warning", "out of range"] in listed


def test_a_file_is_read_as_training_read_it_whatever_its_extension(
    rows: pd.DataFrame, bundle_dir: Path, tmp_path: Path
) -> None:
    rows.to_csv(tmp_path / "rows.data", index=False)
    base = ["predict", "--bundle", str(bundle_dir)]
    proc = run_cli(*base, "rows.data", "out.csv", cwd=tmp_path, check=False)
    assert proc.returncode == 4  # the embedded data was a table: .data is read as Parquet
    assert "cannot read input" in proc.stderr
    run_cli(*base, "rows.data", "out.csv", "--format", "csv", cwd=tmp_path)
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(rows)


@pytest.mark.parametrize(
    ("make", "name", "match", "code"),
    [
        (lambda r: r.drop(columns=["contract"]), "in.csv", "needs: contract", 4),
        (lambda r: r, "in.xlsx", "cannot read input", 4),
        (lambda r: r, "missing.csv", "input file not found", 4),
    ],
)
def test_bad_inputs_name_the_column_or_file(
    rows: pd.DataFrame, bundle_dir: Path, tmp_path: Path, make, name: str, match: str, code: int
) -> None:
    if name != "missing.csv":
        make(rows).to_csv(tmp_path / name, index=False)
    argv = ["predict", "--bundle", str(bundle_dir), name, "out.csv"]
    proc = run_cli(*argv, cwd=tmp_path, check=False)
    assert proc.returncode == code
    assert match in proc.stderr
    assert "Traceback" not in proc.stderr
