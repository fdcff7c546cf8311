"""The featurize stage in-process: it fits on the training split only, writes the document,
and writes each split as that document applies to it, here or in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from helpers import REPO
from pipespec.bundle.transforms import apply
from pipespec.core.documents import TableMeta
from pipespec.stages import featurize
from pipespec.stages.context import ParamsView, StageContext
from pipespec.stages.embedded import generate
from pipespec.stages.parquet import read_table, write_table


def test_stage_writes_the_fitted_document_and_each_split_as_it_applies(tmp_path: Path) -> None:
    raw = generate(600, seed=1)
    raw.loc[raw.index[::7], "monthly_charges"] = None
    splits = {"train": raw.iloc[:400], "valid": raw.iloc[400:].reset_index(drop=True)}
    for name, frame in splits.items():
        write_table(frame, tmp_path / f"{name}.parquet", TableMeta(target="churned"))
    features = yaml.safe_load((REPO / "configs" / "features" / "default.yaml").read_text())
    features.update(drop=["customer_id"], impute={"monthly_charges": "median"})
    params = {
        "features": features,
        "dataset": {"target": "churned", "task": "binary", "weight": None},
        "compute": {"backend": "local"},
    }
    outputs = {
        "transforms": tmp_path / "transforms.json",
        "train": tmp_path / "features_train.parquet",
        "valid": tmp_path / "features_valid.parquet",
    }
    ctx = StageContext(
        "featurize",
        ParamsView(params, featurize.READS, "featurize"),
        {name: tmp_path / f"{name}.parquet" for name in splits},
        outputs,
        tmp_path,
    )
    featurize.run(ctx)
    doc = json.loads(outputs["transforms"].read_text())
    median = splits["train"]["monthly_charges"].median()  # train's, not the whole table's
    assert {"op": "impute", "column": "monthly_charges", "value": median} in [
        {k: s[k] for k in ("op", "column", "value") if k in s} for s in doc["steps"]
    ]
    for name, frame in splits.items():
        table, meta = read_table(outputs[name])
        pd.testing.assert_frame_equal(table, apply(doc, frame))
        assert meta.features == [f["name"] for f in doc["features"]]
        assert meta.categorical == [
            f["name"] for f in doc["features"] if f["type"] == "categorical"
        ]
    code = (  # the saved JSON alone, in a process that never fitted anything
        "import json, pandas as pd; from pipespec.bundle.transforms import apply; "
        f"t = json.load(open({str(outputs['transforms'])!r})); "
        f"apply(t, pd.read_parquet({str(tmp_path / 'valid.parquet')!r}))"
        f".to_parquet({str(tmp_path / 'fresh.parquet')!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    fresh = pd.read_parquet(tmp_path / "fresh.parquet")
    pd.testing.assert_frame_equal(fresh, read_table(outputs["valid"])[0])
