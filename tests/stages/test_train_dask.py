"""The Dask trainer's row weights: each partition's weights are the ones the local trainer
gives the same rows (the class factors counted over the whole table)."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
from test_training import context, tables

from pipespec.stages import cluster, distributed
from pipespec.stages.parquet import part_files, read_table
from pipespec.stages.train_dask import _weights
from pipespec.stages.train_local import sample_weights
from pipespec.stages.training import job


def test_partition_weights_are_the_local_trainers(tmp_path: Path) -> None:
    tables(tmp_path)
    work = job(context(tmp_path, weight="w", model={"class_weight": "balanced"}), threads=1)
    frame = read_table(tmp_path / "train.parquet")[0]
    factors = distributed.factors(cluster.Local().map, part_files(tmp_path / "train.parquet"), work)
    with dask.config.set(scheduler="synchronous"):
        parts = dd.from_pandas(frame, npartitions=3, sort=False)
        series = parts.map_partitions(_weights, "y", "w", factors, meta=("weight", "float64"))
        got = series.compute()
    assert got.name == "weight"
    np.testing.assert_array_equal(got.to_numpy(), sample_weights(frame, work))
