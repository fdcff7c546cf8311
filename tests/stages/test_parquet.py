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


def _write_part(out: Parts, index: int, rows: int) -> None:
    """A worker's task (another process, without the stage's environment): one part."""
    import os

    from pipespec.stages.parquet import HASHES_ENV

    assert HASHES_ENV not in os.environ
    frame = pd.DataFrame({"x": [float(i) for i in range(rows)], "k": ["a", "b"] * (rows // 2)})
    out.write("d", index, frame, TableMeta(target="x", task="regression"))


@pytest.mark.parametrize("hashing", [True, False])
def test_parts_written_by_workers_carry_their_md5_to_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hashing: bool
) -> None:
    """A partitioned output's parts are written by workers (here processes of a spawned
    pool, as Dask's and Spark's are), which have not the stage's environment: the ``Parts``
    made in the stage decides whether they hash their bytes, each worker leaves its part's
    MD5 beside it, and ``commit`` lists every part (with what identifies its file) and
    leaves the parts alone in the output. Without the listing asked for, nothing is hashed."""
    import hashlib
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from pipespec.stages import parquet

    if hashing:
        monkeypatch.setenv(parquet.HASHES_ENV, str(tmp_path / "listing.json"))
    target = tmp_path / "d.parquet"
    with Parts({"d": target}, single=False) as out:
        monkeypatch.delenv(parquet.HASHES_ENV, raising=False)  # the workers' environment
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_write_part, [out] * 3, range(3), [2000, 4000, 6000]))
    names = sorted(p.name for p in target.iterdir())
    assert names == [parquet.PART.format(i) for i in range(3)]
    written = parquet.take_written()
    if not hashing:
        assert written == {}
        return
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in written) == [
        f"d.parquet/{name}" for name in names
    ]
    for path, entry in written.items():
        data, stat = Path(path).read_bytes(), Path(path).stat()
        assert entry == {"md5": hashlib.md5(data).hexdigest(), "size": len(data),
                         "inode": stat.st_ino, "mtime_ns": stat.st_mtime_ns}  # fmt: skip
