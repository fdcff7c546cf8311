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


def test_tables_written_for_pipespec_run_carry_their_md5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``HASHES_ENV`` set, a table is written through a file whose bytes a thread
    hashes on their way out: the same bytes as without it, and the MD5 DVC would compute
    (of the file as it lies, with its size, inode and mtime), for one file and for Parts."""
    import hashlib

    import numpy as np

    from pipespec.stages import parquet

    frame = pd.DataFrame({"x": np.arange(300_000) * 0.5, "k": ["a", "b", "c"] * 100_000})
    meta = TableMeta(target="x", task="regression")
    parquet.write_table(frame, tmp_path / "plain.parquet", meta)
    assert parquet.take_written() == {}  # not asked for: nothing hashed
    monkeypatch.setenv(parquet.HASHES_ENV, str(tmp_path / "listing.json"))
    parquet.write_table(frame, tmp_path / "hashed.parquet", meta)
    with Parts({"a": tmp_path / "a.parquet", "b": tmp_path / "b.parquet"}, single=True) as out:
        for i in range(3):
            out.write("a", i, frame.iloc[i * 1000 : (i + 1) * 1000], meta)
        out.write("b", 0, frame, meta)
    written = parquet.take_written()
    assert (tmp_path / "hashed.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    assert sorted(Path(p).name for p in written) == ["a.parquet", "b.parquet", "hashed.parquet"]
    for path, entry in written.items():
        data = Path(path).read_bytes()
        stat = Path(path).stat()
        assert entry == {
            "md5": hashlib.md5(data).hexdigest(),
            "size": len(data),
            "inode": stat.st_ino,
            "mtime_ns": stat.st_mtime_ns,
        }
    assert parquet.take_written() == {}  # taken once
    out = Parts({"c": tmp_path / "c.parquet"}, single=True)
    out.write("c", 0, frame, meta)
    out.discard()  # the stage failed
    assert parquet.take_written() == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.parquet", "b.parquet", "hashed.parquet", "plain.parquet"
    ]  # fmt: skip
