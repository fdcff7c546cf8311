"""The pieces of compute=dask that need no cluster: the split's row hash and partitioned
outputs that land all or nothing. (Feature fitting on a Dask DataFrame: test_fit_data.py;
the trainers': test_distributed.py and test_train_dask.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipespec.core.documents import TableMeta
from pipespec.stages.parquet import Parts, part_files, table_meta
from pipespec.stages.rows import uniform


def test_split_hash_is_seeded_uniform_and_independent_of_partitioning() -> None:
    keys = np.arange(200_000, dtype=np.uint64)
    u = uniform(keys, 42)
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 0.01
    assert abs((u < 0.15).mean() - 0.15) < 0.005
    pieces = np.concatenate([uniform(part, 42) for part in np.array_split(keys, 7)])
    assert np.array_equal(pieces, u)  # a row's draw does not depend on its partition
    assert not np.array_equal(uniform(keys, 43), u)  # the seed matters


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
