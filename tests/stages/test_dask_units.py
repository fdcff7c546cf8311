"""The pieces of compute=dask that need no cluster: the split's row hash, feature fitting on
a Dask DataFrame against fitting in memory, and partitioned outputs that land all or nothing.
(The trainers' are in test_distributed.py and test_train_dask.py.)"""

from __future__ import annotations

from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from pipespec.core.documents import TableMeta
from pipespec.stages.embedded import generate
from pipespec.stages.featurize import Partitioned, _fit, fit
from pipespec.stages.parquet import Parts, part_files, table_meta
from pipespec.stages.rows import uniform

FEATURES = {
    "select": None,
    "drop": ["customer_id"],
    "rename": {},
    "categorical": None,
    "dates": {},
    "infer_dates": True,
    "derived": {"charge_ratio": "total_charges / monthly_charges"},
    "transforms": {},
    "impute": {"region": "most_frequent", "total_charges": "constant:0"},
    "missing_indicators": True,
    "encoding": "native",
    "max_categories": 1000,
    "min_frequency": 5,
    "other_bucket": True,
    "target_map": {},
    "custom": [],
}


def test_split_hash_is_seeded_uniform_and_independent_of_partitioning() -> None:
    keys = np.arange(200_000, dtype=np.uint64)
    u = uniform(keys, 42)
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 0.01
    assert abs((u < 0.15).mean() - 0.15) < 0.005
    pieces = np.concatenate([uniform(part, 42) for part in np.array_split(keys, 7)])
    assert np.array_equal(pieces, u)  # a row's draw does not depend on its partition
    assert not np.array_equal(uniform(keys, 43), u)  # the seed matters


def test_fitting_on_dask_partitions_gives_the_in_memory_transforms() -> None:
    train = generate(6000, seed=3)
    train.loc[train.index[::97], "region"] = None
    train.loc[train.index[::89], "monthly_charges"] = None
    columns = [c for c in train.columns if c != "churned"]
    spec = {**FEATURES, "impute": {**FEATURES["impute"], "monthly_charges": "median"}}
    expected = fit(train, spec, target="churned", task="binary")
    assert any(s.op == "impute" and s.column == "monthly_charges" for s in expected.steps)
    with dask.config.set(scheduler="synchronous"):
        frame = dd.from_pandas(train, npartitions=4, sort=False)
        got = _fit(Partitioned(frame, columns), spec, target="churned", task="binary", weight=None)
    assert got == expected  # the median exact, not Dask's approximate quantile


class Centered:
    """A custom transform: a column minus its training mean."""

    def fit(self, frame: pd.DataFrame) -> dict:
        return {"mean": float(frame["age"].mean())}

    def transform(self, frame: pd.DataFrame, state: dict) -> pd.DataFrame:
        return frame.assign(age=frame["age"] - state["mean"])


def test_custom_transforms_are_refused_on_dask_naming_the_key() -> None:
    from pipespec.core.errors import ConfigError

    train = generate(500, seed=3)
    spec = {**FEATURES, "custom": [f"{__name__}:Centered"]}
    assert fit(train, spec, target="churned", task="binary").steps[-1].op == "custom"
    with dask.config.set(scheduler="synchronous"):
        frame = dd.from_pandas(train, npartitions=2, sort=False)
        columns = [c for c in train.columns if c != "churned"]
        with pytest.raises(ConfigError, match=r"features.custom .*not supported with compute=dask"):
            _fit(Partitioned(frame, columns), spec, target="churned", task="binary", weight=None)


def test_parts_land_together_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "data" / "table.parquet"
    target.parent.mkdir()
    target.write_bytes(b"old single-file table")
    frame = pd.DataFrame({"a": [1, 2, 3]})

    def fail_halfway() -> None:
        with Parts({"t": target}, single=False) as out:
            out.write("t", 0, frame, TableMeta(target="a"))
            raise RuntimeError("a partition failed")

    with pytest.raises(RuntimeError):
        fail_halfway()
    assert target.read_bytes() == b"old single-file table"  # untouched
    assert not list(target.parent.glob(".*.tmp"))
    with Parts({"t": target}, single=False) as out:
        out.write("t", 0, frame, TableMeta(target="a"))
        out.write("t", 1, frame, TableMeta(target="a"))
    assert [p.name for p in part_files(target)] == ["part.00000.parquet", "part.00001.parquet"]
    assert table_meta(target) == TableMeta(target="a")
    assert len(pd.read_parquet(target)) == 6
