"""compute=spark and dataset.source=spark end to end, with real Spark (pyspark's wheel),
real DVC and real LightGBM: a standalone master and two workers started as separate
processes on 127.0.0.1, the Adult pipeline on them against the local run; a Spark table
written with saveAsTable into a local warehouse, trained on by config alone, and a change to
the table re-running load. Spark starts slowly on a loaded machine: small samples, few
partitions, one cluster for the module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import run_cli, shared

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

ADULT = ("adult", "adult.data")
ARGS = (
    "dataset=adult",
    "dataset.sample.fraction=0.25",
    "dataset.sample.rows=null",
    "model.num_boost_round=60",
    "behavior.enforce=false",
)  # latency checks fail on a loaded machine, not the point here


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone cluster: a master and two 1-core workers, each its own process."""
    from pipespec.stages.spark import standalone

    with standalone(2, tmp_path_factory.mktemp("spark-cluster"), memory="1g") as url:
        yield url


def _table(path: Path) -> pd.DataFrame:
    """A stage's table (a file, or a directory of parts in order), with plain dtypes."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    for column in frame.columns:
        if frame[column].dtype != "float64":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _metrics(root: Path) -> dict:
    return json.loads((root / "metrics" / "evaluate.json").read_text())


def test_adult_on_a_standalone_cluster_matches_local(
    new_project, master: str, tmp_path: Path
) -> None:
    shared(*ADULT)
    test_file = shared("adult", "adult.test")
    root = new_project()
    run_cli("run", *ARGS, cwd=root)
    local = _metrics(root)
    local_transforms = (root / "models" / "featurize" / "transforms.json").read_bytes()
    local_tables = {
        name: _table(root / "data" / "split" / f"{name}.parquet")
        for name in ("train", "valid", "test")
    }
    local_bundle = tmp_path / "local-bundle"
    (root / "models" / "bundle").rename(local_bundle)

    spark = ("compute=spark", f"compute.master={master}", "compute.executor_memory=1g",
             "compute.partition_rows=9000")  # fmt: skip
    proc = run_cli("run", *ARGS, *spark, cwd=root)
    out = proc.stdout + proc.stderr
    assert f"Spark session on {master} (2 executor(s))" in out
    assert "LightGBM data-parallel on 2 Spark tasks" in out
    assert "Connected to rank" not in out  # LightGBM's network chatter stays out
    loaded = root / "data" / "load" / "data.parquet"
    assert loaded.is_dir()
    assert len(list(loaded.glob("part.*.parquet"))) >= 3
    # The same seed: the same rows in the same splits, row for row; the same transforms.
    for name, table in local_tables.items():
        on_spark = _table(root / "data" / "split" / f"{name}.parquet")
        pd.testing.assert_frame_equal(on_spark, table, check_dtype=False)
    spark_transforms = (root / "models" / "featurize" / "transforms.json").read_bytes()
    assert spark_transforms == local_transforms
    on_spark = _metrics(root)
    assert abs(on_spark["test"]["auc"] - local["test"]["auc"]) <= 0.005, (on_spark, local)
    assert on_spark["test"]["auc"] > 0.9
    model = (root / "models" / "train" / "model.txt").read_text()
    assert "machines: ]" in model  # no addresses or ports of the run in the file

    # The bundle predicts Adult's raw test file (no header, a junk first line) like the local.
    predicted = {}
    for name, bundle in (("spark", root / "models" / "bundle"), ("local", local_bundle)):
        target = tmp_path / f"{name}.parquet"
        run_cli("predict", "--bundle", str(bundle), str(test_file), str(target), cwd=root)
        predicted[name] = pd.read_parquet(target)
    assert len(predicted["spark"]) == len(predicted["local"]) > 16000
    # binary: `prediction` is the probability of the second class (Bundle.output_columns)
    assert list(predicted["spark"].columns) == list(predicted["local"].columns)
    assert predicted["spark"]["prediction"].corr(predicted["local"]["prediction"]) > 0.98


WRITER = """
import sys
from pathlib import Path
import pyarrow.csv as csv
from pipespec.stages.spark import session

root, rows, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
table = csv.read_csv(sys.argv[4]).slice(0, rows)
with session({}, root, catalog={"warehouse": "spark-warehouse", "metastore": "metastore_db"}) as s:
    s.createDataFrame(table).write.mode(mode).saveAsTable("adult")
"""


def _write_table(root: Path, source: Path, rows: int, mode: str) -> None:
    """The Spark table ``adult`` written with saveAsTable, by a process of its own (the
    local Derby metastore admits one JVM at a time)."""
    subprocess.run(
        [sys.executable, "-c", WRITER, str(root), str(rows), mode, str(source)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip


def test_a_spark_table_trained_on_by_config_and_its_change_reruns_load(
    new_project, tmp_path: Path
) -> None:
    root = new_project()
    raw = shared(*ADULT)
    names = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
             "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
             "hours_per_week", "native_country", "income"]  # fmt: skip
    frame = pd.read_csv(raw, header=None, names=names, skipinitialspace=True, na_values="?")
    source = tmp_path / "adult.csv"
    frame.to_csv(source, index=False)
    _write_table(root, source, 3000, "overwrite")
    config = {
        "name": "adult_table", "source": "spark", "table": "adult",
        "snapshot": "spark-warehouse/adult", "warehouse": "spark-warehouse",
        "metastore": "metastore_db", "target": "income", "task": "binary",
    }  # fmt: skip
    (root / "configs" / "dataset" / "adult_table.yaml").write_text(yaml.safe_dump(config))
    args = (
        "dataset=adult_table",
        "dataset.sample.fraction=null",
        "model.num_boost_round=20",
        "behavior.enforce=false",
    )  # every row of the table: env=dev samples half
    proc = run_cli("run", *args, cwd=root)
    assert "table 'adult' (dataset.table) -> snapshot" in proc.stdout + proc.stderr
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    deps = {d["path"]: d for d in lock["stages"]["load"]["deps"]}
    assert "spark-warehouse/adult" in deps  # the table's files, hashed by DVC
    first = deps["spark-warehouse/adult"]["md5"]
    metrics = json.loads((root / "metrics" / "train.json").read_text())
    rows = len(_table(root / "data" / "load" / "data.parquet"))
    assert rows == 3000
    assert metrics["train_rows"] < rows

    proc = run_cli("run", *args, cwd=root)  # nothing changed: nothing runs
    assert "Running stage 'load'" not in proc.stdout

    _write_table(root, source, 2500, "overwrite")  # the table changes
    proc = run_cli("run", *args, cwd=root)
    assert "Running stage 'load'" in proc.stdout
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    deps = {d["path"]: d for d in lock["stages"]["load"]["deps"]}
    assert deps["spark-warehouse/adult"]["md5"] != first
    assert len(_table(root / "data" / "load" / "data.parquet")) == 2500

    # The bundle reads a file of the table's rows.
    rows_file = tmp_path / "rows.parquet"
    frame.head(200).drop(columns=["income"]).to_parquet(rows_file)
    out = tmp_path / "predicted.parquet"
    run_cli("predict", "--bundle", str(root / "models" / "bundle"), str(rows_file), str(out),
            cwd=root)  # fmt: skip
    predicted = pd.read_parquet(out)
    assert len(predicted) == 200
    assert np.isfinite(predicted.select_dtypes("number").to_numpy()).all()


def test_a_master_that_does_not_answer_fails_fast_naming_the_key(new_project) -> None:
    root = new_project()
    proc = run_cli("run", "compute=spark", "compute.master=spark://127.0.0.1:9", cwd=root,
                   check=False)  # fmt: skip
    assert proc.returncode != 0
    assert (
        "cannot reach the Spark master at spark://127.0.0.1:9 (compute.master): nothing "
        "accepts connections there" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not (root / "data" / "load" / "data.parquet").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "compute.master=mesos://x:5050",
            "'compute.master' in command-line override "
            "'compute.master=mesos://x:5050': 'mesos://x:5050' is not a Spark master",
        ),
        (
            "compute.executor_memory=lots",
            "'compute.executor_memory' in command-line override "
            "'compute.executor_memory=lots': 'lots' is not a JVM memory size",
        ),
        ("compute.executors=0", "'compute.executors' in command-line override"),
    ],
)
def test_bad_spark_settings_fail_at_composition(new_project, override: str, message: str) -> None:
    root = new_project()
    proc = run_cli("compose", "compute=spark", override, cwd=root, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_a_spark_dataset_needs_a_table_or_a_query(new_project) -> None:
    root = new_project()
    proc = run_cli("compose", "dataset=spark", "dataset.target=y", "dataset.task=binary",
                   cwd=root, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "dataset.source=spark reads dataset.table or dataset.query: set exactly one" in (
        proc.stderr
    )


def test_compute_spark_without_pyspark_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['pyspark'] = None\n"  # as if the extra were not installed
        "from pipespec.core.errors import ConfigError\n"
        "from pipespec.stages.spark import require\n"
        "try:\n    require()\nexcept ConfigError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "compute=spark (or dataset.source=spark) needs pyspark" in proc.stdout
    assert "pip install 'pipespec[spark]'" in proc.stdout
