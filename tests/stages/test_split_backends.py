"""One split algorithm for both backends: the same seed puts the same rows in the same split,
however the table is partitioned and whichever backend runs the stage; stratified shares are
met exactly within each class; time and group splits keep their meaning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipespec.core.documents import TableMeta
from pipespec.stages import split
from pipespec.stages.context import ParamsView, StageContext
from pipespec.stages.parquet import part_files, write_table

SPEC = {"valid": 0.15, "test": 0.2, "stratify": True, "time": None, "group": None}


def _table(rows: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "y": rng.choice(["no", "yes", "rare"], size=rows, p=[0.7, 0.27, 0.03]),
            "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), "D"),
            "shop": rng.choice([f"s{i}" for i in range(60)], size=rows),
            "x": rng.normal(size=rows),
        }
    )


def _store(frame: pd.DataFrame, path: Path, parts: int) -> Path:
    meta = TableMeta(target="y", task="multiclass")
    if parts == 1:
        write_table(frame, path, meta)
        return path
    path.mkdir(parents=True)
    for i, piece in enumerate(np.array_split(np.arange(len(frame)), parts)):
        write_table(frame.iloc[piece].reset_index(drop=True), path / f"part.{i:05d}.parquet", meta)
    return path


def _run(tmp: Path, frame: pd.DataFrame, parts: int, spec: dict, backend: str) -> dict[str, set]:
    data = _store(frame, tmp / "in" / "data.parquet", parts)
    params = {
        "split": spec,
        "seed": 42,
        "dataset": {"target": "y", "task": "multiclass"},
        "compute": {"backend": backend},
    }
    ctx = StageContext(
        "split",
        ParamsView(params, ("split", "seed", "dataset", "compute.backend"), "split"),
        {"data": data},
        {name: tmp / "out" / f"{name}.parquet" for name in split.SPLITS},
        tmp,
        compute={"backend": backend, "workers": 2, "threads_per_worker": 1,
                 "memory_limit": "1GiB"},
    )  # fmt: skip
    (tmp / "out").mkdir(parents=True)
    split.run(ctx)
    out = {}
    for name in split.SPLITS:
        files = part_files(ctx.output(name))
        assert len(files) == (1 if backend == "local" else parts)
        out[name] = set(pd.concat([pd.read_parquet(f) for f in files])["id"])
    return out


@pytest.mark.parametrize(
    "spec",
    [SPEC, {**SPEC, "stratify": False}, {**SPEC, "group": "shop"}, {**SPEC, "time": "when"}],
    ids=["stratified", "plain", "group", "time"],
)
def test_the_same_rows_in_the_same_split_however_partitioned(tmp_path: Path, spec: dict) -> None:
    frame = _table()
    whole = _run(tmp_path / "one", frame, 1, spec, "local")
    parted = _run(tmp_path / "seven", frame, 7, spec, "local")
    assert whole == parted
    assert sum(len(v) for v in whole.values()) == len(frame)
    by_id = frame.set_index("id")
    if spec["time"]:  # the newest rows are test, the ones before them valid
        when = {name: by_id.loc[sorted(ids), "when"] for name, ids in whole.items()}
        assert when["train"].max() < when["valid"].min() <= when["valid"].max() < when["test"].min()
    elif spec["group"]:  # a group never straddles two splits
        shops = {name: set(by_id.loc[sorted(ids), "shop"]) for name, ids in whole.items()}
        assert not (shops["train"] & shops["valid"])
        assert not (shops["train"] & shops["test"])
        assert not shops["valid"] & shops["test"]
    elif spec["stratify"]:  # each class split in the shares asked, exactly (rounded)
        for label, rows in frame.groupby("y"):
            n = len(rows)
            assert len(set(rows["id"]) & whole["test"]) == round(n * 0.2), label
            assert len(set(rows["id"]) & whole["valid"]) == round(n * 0.15), label


@pytest.mark.filterwarnings("ignore::UserWarning")  # distributed: a dashboard port in use
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_dask_splits_the_rows_as_local_does(tmp_path: Path) -> None:
    frame = _table(2000)
    local = _run(tmp_path / "local", frame, 1, SPEC, "local")
    on_dask = _run(tmp_path / "dask", frame, 5, SPEC, "dask")
    assert on_dask == local


def test_a_fixed_test_file_stays_the_test_set(tmp_path: Path) -> None:
    frame = _table(1000)
    frame["_split"] = np.where(frame["id"] >= 800, "test", "")
    got = _run(tmp_path, frame, 3, {**SPEC, "test": 0.5}, "local")
    assert got["test"] == set(range(800, 1000))
    assert "_split" not in pd.read_parquet(tmp_path / "out" / "train.parquet").columns
    assert len(got["valid"]) == sum(
        round(n * 0.15) for n in frame[frame["id"] < 800].groupby("y").size()
    )


def test_time_as_text_newest_last_in_exact_shares(tmp_path: Path) -> None:
    frame = _table(100)
    frame["when"] = pd.date_range("2020-01-01", periods=100).strftime("%m/%d/%Y")
    frame = frame.sample(frac=1, random_state=0).reset_index(drop=True)
    got = _run(tmp_path, frame, 2, {**SPEC, "time": "when", "valid": 0.1}, "local")
    when = pd.to_datetime(frame.set_index("id")["when"], format="%m/%d/%Y")
    assert [len(got[name]) for name in split.SPLITS] == [70, 10, 20]
    assert when[sorted(got["train"])].max() < when[sorted(got["valid"])].min()
    assert when[sorted(got["valid"])].max() < when[sorted(got["test"])].min()
