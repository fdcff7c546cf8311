"""The validate stage end to end through `pipespec run` (real DVC): Telco's blank
TotalCharges fail a strict schema or are quarantined, schema edits re-run validation and what
follows (and model edits do not), `schema infer` output validates its own CSV, bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from helpers import SMALL, lock_md5s, run_cli, shared

pytestmark = pytest.mark.slow

TELCO = ("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
FAST_MODEL = ("model.num_boost_round=20",)


def ran(output: str) -> list[str]:
    found = re.search(r"^ran: (.*?)  \(", output, re.M)
    assert found, output
    return [] if found.group(1) == "nothing" else found.group(1).split(", ")


def _with_schemas(root: Path) -> Path:
    """The example schemas/ folder, as `pipespec init` copies it."""
    assert (root / "schemas" / "telco.yaml").is_file()
    return root


def _telco(path: Path) -> list[str]:
    return [
        "dataset=csv",
        f"dataset.path={path}",
        "dataset.target=Churn",
        "dataset.task=binary",
        "dataset.sample.fraction=null",  # every row, so all 11 blanks are there
        "schema=telco",
        *FAST_MODEL,
    ]


def test_telco_strict_schema_fails_naming_column_check_and_count(new_project) -> None:
    csv = shared(*TELCO)
    root = _with_schemas(new_project())
    proc = run_cli("run", *_telco(csv), "schema.policy=fail", cwd=root, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert re.search(
        r"validation failed \(schema\.policy=fail\): 11 of 7,043 rows break schemas/telco\.yaml",
        out,
    ), out
    # load reads the blank ' ' tokens as missing (one reading contract): the strict schema
    # then names them as nulls in a column that must not hold any
    assert "TotalCharges: not_nullable fails for 11 rows" in out
    assert "Traceback" not in out
    assert "Running stage 'split'" not in out  # nothing downstream runs
    assert not (root / "data" / "validate" / "data.parquet").exists()
    assert not (root / "data" / "split").exists()
    report = json.loads((root / "data" / "validate" / "report.json").read_text())
    assert report["outcome"] == "failed"
    assert [(f["column"], f["check"], f["count"]) for f in report["failures"]] == [
        ("TotalCharges", "not_nullable", 11)
    ]


def test_telco_quarantine_goes_on_without_exactly_the_blank_rows(new_project) -> None:
    csv = shared(*TELCO)
    root = _with_schemas(new_project())
    proc = run_cli("run", *_telco(csv), cwd=root)  # schema=telco: policy quarantine, max 1%
    assert ran(proc.stderr)[:3] == ["load", "validate", "split"]
    assert "quarantined 11 of 7,043 rows" in proc.stderr
    raw = pd.read_csv(csv)
    blanks = raw.loc[raw["TotalCharges"] == " ", "customerID"]
    assert len(blanks) == 11
    quarantine = pd.read_parquet(root / "data" / "validate" / "quarantine.parquet")
    assert sorted(quarantine["customerID"]) == sorted(blanks)
    assert set(quarantine["_failures"]) == {"TotalCharges: not_nullable"}
    data = pd.read_parquet(root / "data" / "validate" / "data.parquet")
    assert len(data) == 7043 - 11
    assert data["TotalCharges"].dtype == "float64"
    assert not set(blanks) & set(data["customerID"])
    metrics = json.loads((root / "metrics" / "evaluate.json").read_text())
    assert metrics["test"]["auc"] > 0.8

    # Over the threshold, the same quarantine fails the run.
    proc = run_cli("run", *_telco(csv), "schema.max_failure_fraction=0.001", cwd=root, check=False)
    assert proc.returncode != 0
    assert "0.16% of rows fail, more than schema.max_failure_fraction=0.001" in proc.stderr


def test_schema_edit_reruns_validation_and_downstream_model_edit_does_not(new_project) -> None:
    root = _with_schemas(new_project())
    args = (*SMALL, "schema=default", "schema.policy=quarantine", "schema.max_failure_fraction=0.5")
    first = run_cli("run", *args, cwd=root)
    assert ran(first.stderr)[:4] == ["load", "validate", "split", "featurize"]
    before = lock_md5s(root)

    schema = root / "schemas" / "default.yaml"
    text = schema.read_text()
    assert "in_range: {min_value: 18, max_value: 120}" in text
    schema.write_text(
        text.replace("min_value: 18, max_value: 120", "min_value: 25, max_value: 120")
    )
    edited = run_cli("run", *args, cwd=root)
    reran = ran(edited.stderr)
    assert "load" not in reran
    assert reran[:6] == ["validate", "split", "featurize", "train", "package", "evaluate"]
    after = lock_md5s(root)
    assert before["data/load/data.parquet"] == after["data/load/data.parquet"]
    assert before["data/validate/quarantine.parquet"] != after["data/validate/quarantine.parquet"]
    quarantine = pd.read_parquet(root / "data" / "validate" / "quarantine.parquet")
    assert len(quarantine) > 0
    assert (quarantine["age"] < 25).all()
    assert set(quarantine["_failures"]) == {"age: in_range(25, 120)"}

    model = run_cli("run", *args, "model.num_leaves=7", cwd=root)
    assert "train" in ran(model.stderr)
    assert not {"load", "validate", "split", "featurize"} & set(ran(model.stderr))


def test_inferred_schema_validates_its_own_csv(new_project) -> None:
    csv = shared("titanic", "train.csv")
    root = new_project()
    run_cli("schema", "infer", str(csv), "--out", "schemas/titanic.yaml", cwd=root)
    text = (root / "schemas" / "titanic.yaml").read_text()
    assert "Sex:\n    dtype: str\n    nullable: false\n    isin: [female, male]" in text
    assert "Age:\n    dtype: float64\n    nullable: true" in text
    proc = run_cli(
        "run", "dataset=csv", f"dataset.path={csv}", "dataset.target=Survived",
        "dataset.task=binary", "env=prod", "schema.path=schemas/titanic.yaml", *FAST_MODEL,
        cwd=root,
    )  # fmt: skip
    assert "891 rows x 12 columns fit schemas/titanic.yaml" in proc.stderr
    report = json.loads((root / "data" / "validate" / "report.json").read_text())
    assert report["outcome"] == "passed"
    assert report["failures"] == []


def test_bad_schema_file_is_named(new_project) -> None:
    root = new_project()
    (root / "schemas").mkdir(exist_ok=True)
    (root / "schemas" / "bad.yaml").write_text(
        "columns:\n  age: {dtype: float64, greter_than: 3}\n"
    )
    proc = run_cli("run", *SMALL, "schema.path=schemas/bad.yaml", cwd=root, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert (
        "stage 'validate': schema file schemas/bad.yaml (schema.path): unknown key "
        "'greter_than' in column 'age'" in out
    ), out
    assert "Did you mean 'greater_than'?" in out
    assert "Traceback" not in out

    proc = run_cli("run", *SMALL, "schema.path=schemas/missing.yaml", cwd=root, check=False)
    assert proc.returncode != 0
    assert "schemas/missing.yaml" in proc.stdout + proc.stderr
