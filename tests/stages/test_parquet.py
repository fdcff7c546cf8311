"""stages/parquet.py: a stage's outputs written part by part land all together or not at
all."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipespec.core.documents import TableMeta
from pipespec.stages.parquet import Parts, part_files, table_meta


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


def test_the_memory_mapped_read_gives_read_table_s_frame(trained_project: Path) -> None:
    """The package stage reads its tables memory-mapped; the frame is the one `read_table`
    gives, dtypes included, for every column and for a selection."""
    import pandas as pd

    from pipespec.stages.parquet import read_table

    path = trained_project / "data/split/train.parquet"
    pd.testing.assert_frame_equal(read_table(path, memory_map=True)[0], read_table(path)[0])
    some = list(read_table(path)[0].columns[::2])
    pd.testing.assert_frame_equal(
        read_table(path, columns=some, memory_map=True)[0], read_table(path, columns=some)[0]
    )
