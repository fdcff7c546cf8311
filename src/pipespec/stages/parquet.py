"""Tables between stages: Parquet through pyarrow, written atomically and byte-stable.

A table is a Parquet file or, under ``compute=dask``, a directory of ``part.NNNNN.parquet``
files, one per partition, in row order. Every reader here takes both forms: this module is
the one reader and writer of stage tables, for both backends.

Tables that pipespec writes carry a small JSON document in the Parquet schema metadata
(key ``pipespec``, a ``TableMeta``): the target column, the task, the class labels and which
columns are categorical, so that a downstream stage needs no side channel to interpret them.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path
from pipespec.core.documents import TableMeta, from_json, to_json
from pipespec.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

META_KEY = b"pipespec"
PART = "part.{:05d}.parquet"
COMPRESSION = "snappy"  # reads ~2x faster than zstd here
CHUNK_ROWS = 131_072  # rows per row group written, and per chunk a stage reads locally


# Set (by ``pipespec run``'s DVC hook, ``dvc_repo._commands``) to a file where the stage
# lists the MD5 of each table it wrote: computed on a thread as the bytes go out, so DVC
# need not read the table again to hash it.
HASHES_ENV = "PIPESPEC_TABLE_HASHES"
_WRITTEN: dict[str, dict[str, Any]] = {}  # absolute path -> md5, size, inode, mtime_ns


# --- reading -----------------------------------------------------------------------------


def part_files(path: Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or a directory's parts in order."""
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise DataError(f"no Parquet files in {path}")
        return files
    if not path.exists():
        raise DataError(f"input file not found: {path}")
    return [path]


def part_rows(files: Sequence[Path]) -> list[int]:
    """Rows per file, from the Parquet footers (no data read)."""
    import pyarrow.parquet as pq

    return [pq.ParquetFile(f).metadata.num_rows for f in files]


def offsets(counts: Sequence[int]) -> list[int]:
    """The first global row number of each part."""
    out, total = [], 0
    for n in counts:
        out.append(total)
        total += n
    return out


def read_arrow(
    path: Path,
    columns: list[str] | None = None,
    *,
    memory_map: bool = False,
    threads: bool = True,
) -> pa.Table:
    """A table (file or directory of parts) as Arrow, only ``columns`` if given.
    ``memory_map``: Arrow decodes the pages where they lie instead of copying the file into
    fresh buffers first (the package stage's 700k x 55 training rows: about 1.0 s of CPU
    against 1.5-2.4 s); ``threads=False``: one decoding thread (a reader beside other work)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = part_files(path)
    tables = [
        pq.read_table(f, columns=columns, memory_map=memory_map, use_threads=threads) for f in files
    ]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def read_row_groups(
    path: Path,
    columns: list[str] | None,
    positions: np.ndarray | Callable[[int], np.ndarray | None] | None = None,
    visit: Callable[[pa.Table], None] | None = None,
) -> pa.Table:
    """The rows ``positions`` (sorted row numbers, or a function making them of the file's
    row count, called once the first group is being read; None: every row) of one Parquet
    file, only ``columns`` (None: all), read a row group at a time: no more than two groups'
    rows are held at once beyond those kept. ``visit`` sees each whole group before it is
    let go.

    The next group is decoded (by Arrow, without the GIL) while this one is visited and
    its rows taken: at 1M rows of 55 columns that work was 0.2 s the decoding waited on."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path, memory_map=True)
    count = file.metadata.num_row_groups
    parts, start = [], 0
    with ThreadPoolExecutor(max_workers=1) as reader:

        def read(index: int) -> Future[pa.Table] | None:
            return (
                reader.submit(file.read_row_group, index, columns=columns)
                if index < count
                else None
            )

        upcoming = read(0)
        if callable(positions):
            positions = positions(file.metadata.num_rows)
        for index in range(count):
            assert upcoming is not None
            group = upcoming.result()
            upcoming = read(index + 1)
            if visit is not None:
                visit(group)
            end = start + group.num_rows
            if positions is None:
                parts.append(group)
            else:
                low, high = np.searchsorted(positions, [start, end])
                parts.append(group.take(pa.array(positions[low:high] - start)))
            start = end
    schema = file.schema_arrow
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
    return pa.concat_tables(parts) if parts else schema.empty_table()


def read_table(
    path: Path, columns: list[str] | None = None, *, memory_map: bool = False
) -> tuple[pd.DataFrame, TableMeta]:
    """A table written by a stage (only ``columns``, if given) as pandas, and its pipespec
    metadata (empty if none); ``memory_map`` as ``read_arrow``'s."""
    table = read_arrow(path, columns, memory_map=memory_map)
    meta = schema_meta(table.schema)
    # self_destruct: Arrow frees each column once pandas has it, so the two copies of the
    # table never coexist whole (the peak of a stage that reads a large table). The table
    # must not be touched afterwards.
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    _give_back()
    return frame, meta


def _give_back() -> None:
    """Return the memory Arrow freed to the system. Arrow's allocator keeps it for reuse
    otherwise, and a stage that goes on in pandas (featurize's fit) would start from the
    peak of the read: 930 MiB against 485 MiB for 700k rows x 55."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def read_part(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """One part file as pandas."""
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pandas(self_destruct=True, split_blocks=True)


def chunks(path: Path, *, whole: bool) -> Iterator[pa.Table]:
    """A part's rows: ``whole`` (a part written as its own file, on Dask), else a row
    group's worth at a time (locally, where parts are appended as row groups), so that a
    stage streams a large table through instead of holding it. At least one (maybe empty)
    table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if whole:
        yield pq.read_table(path)
        return
    source = pq.ParquetFile(path)
    schema = source.schema_arrow
    empty = True
    for batch in source.iter_batches(batch_size=CHUNK_ROWS):
        empty = False
        yield pa.Table.from_batches([batch], schema=schema)
    if empty:
        yield schema.empty_table()


def table_columns(path: Path) -> tuple[list[str], TableMeta]:
    """The column names of a table and its pipespec metadata, from one footer alone."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(part_files(path)[0])
    return list(schema.names), schema_meta(schema)


def table_meta(path: Path) -> TableMeta:
    """The pipespec metadata of a table written by a stage (empty if none)."""
    return table_columns(path)[1]


def schema_meta(schema: pa.Schema) -> TableMeta:
    """The pipespec metadata an Arrow schema carries (empty if none)."""
    raw = (schema.metadata or {}).get(META_KEY)
    return from_json(TableMeta, json.loads(raw), "table metadata") if raw else TableMeta()


def frame(path: Path, columns: list[str] | None = None) -> Any:
    """A table as a Dask DataFrame, one partition per part file."""
    import dask.dataframe as dd

    files = part_files(path)
    return dd.read_parquet([str(f) for f in files], columns=columns, split_row_groups=False)


# --- writing -----------------------------------------------------------------------------


def arrow(table: pd.DataFrame | pa.Table, meta: TableMeta | None) -> pa.Table:
    """``table`` as Arrow (no pandas index) with ``meta`` in its schema metadata."""
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if meta is None:
        return table
    metadata = dict(table.schema.metadata or {})
    metadata[META_KEY] = json.dumps(to_json(meta), sort_keys=True).encode()
    return table.replace_schema_metadata(metadata)


def write_table(table: pd.DataFrame | pa.Table, path: Path, meta: TableMeta | None = None) -> None:
    """Write ``table`` (pandas without its index, or Arrow) with ``meta`` attached, atomically;
    deterministic bytes."""
    import pyarrow.parquet as pq

    table = arrow(table, meta)
    with atomic_path(path) as tmp:
        sink = _sink(tmp, _hashing())
        try:
            pq.write_table(table, sink, row_group_size=CHUNK_ROWS, **options(table.schema))
        finally:
            digest = _digest(sink)
    _written(path, digest)


class _Hashing:
    """A file Arrow's Parquet writer writes to, whose bytes a thread hashes (MD5, as DVC
    does) on their way out. Arrow hands over immutable ``bytes``, which the thread reads as
    they are (anything else is copied first); a bounded queue keeps at most a few of them
    waiting."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=32)
        self._thread = threading.Thread(target=self._hash, name="table md5", daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        while (data := self._queue.get()) is not None:
            self._md5.update(data)

    def write(self, data: bytes) -> int:
        if not isinstance(data, bytes):  # a buffer Arrow might reuse: the thread gets a copy
            data = bytes(data)
        self._queue.put(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self._file.tell()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> str:
        """Close the file; the MD5 of everything written."""
        if not self._file.closed:
            self._queue.put(None)
            self._thread.join()
            self._file.close()
        return self._md5.hexdigest()


def _hashing() -> bool:
    """Whether the stage is to list its tables' MD5 (``HASHES_ENV``)."""
    return bool(os.environ.get(HASHES_ENV))


def _sink(path: Path, hashing: bool) -> Any:
    """Where a table is written: ``path`` itself, or a ``_Hashing`` file."""
    return _Hashing(path) if hashing else path


def _digest(sink: Any) -> str | None:
    """Close ``sink``; its MD5 when it is a ``_Hashing`` file."""
    return sink.close() if isinstance(sink, _Hashing) else None


def _written(path: Path, digest: str | None) -> None:
    """Remember ``digest`` for the table now at ``path`` (with what identifies the file)."""
    if digest is None:
        return
    stat = path.stat()
    _WRITTEN[os.path.abspath(path)] = {
        "md5": digest,
        "size": stat.st_size,
        "inode": stat.st_ino,
        "mtime_ns": stat.st_mtime_ns,
    }


def take_written() -> dict[str, dict[str, Any]]:
    """The tables written since the last call, by absolute path: their MD5 and what
    identifies the file (size, inode, mtime_ns); forgotten here."""
    written = dict(_WRITTEN)
    _WRITTEN.clear()
    return written


def options(schema: pa.Schema) -> dict[str, Any]:
    """How every stage table is written: snappy, and dictionary encoding for all but
    floating-point columns. Measured values rarely repeat, and trying a dictionary on them
    before falling back to plain encoding made writing 1M x 55 take 2x and reading it 3x as
    long (text, codes and flags keep their dictionaries)."""
    import pyarrow as pa

    plain = {f.name for f in schema if pa.types.is_floating(f.type)}
    return {
        "compression": COMPRESSION,
        "use_dictionary": [f.name for f in schema if f.name not in plain],
    }


_DIGEST = ".{}.md5"  # beside a part a worker wrote and hashed: its MD5, until ``commit``


def _part_digests(folder: Path) -> dict[str, str]:
    """The MD5 each worker left beside its part in ``folder`` (``Parts.write``), by part
    name; the files are removed, so that the output holds the parts alone."""
    found = {}
    for side in sorted(folder.glob(_DIGEST.format("*"))):
        part = side.name[1 : -len(".md5")]
        digest = side.read_text(encoding="ascii").strip()
        side.unlink()
        if (folder / part).is_file():
            found[part] = digest
    return found


class Parts:
    """Output tables written part by part, by a stage's body on each partition.

    ``single``: each output is one Parquet file, its parts appended as row groups in order
    (the local backend, which runs the parts in order in one process); otherwise a directory
    of part files (Dask, whose workers write their partitions, or Spark's executors). Under
    ``pipespec run`` (``HASHES_ENV``, read where this object is made) a worker hashes its
    part as it writes it and leaves the MD5 in a file beside it, which ``commit`` takes into
    the stage's listing and removes. Everything goes to temporary
    paths next to the targets, moved into place together when every part has succeeded: a
    run that fails halfway leaves the previous outputs as they were.
    """

    def __init__(self, outputs: dict[str, Path], *, single: bool) -> None:
        self.targets = dict(outputs)
        self.single = single
        token = uuid.uuid4().hex[:8]
        self.temps = {n: p.parent / f".{p.name}.{token}.tmp" for n, p in outputs.items()}
        self.writers: dict[str, Any] = {}
        self.sinks: dict[str, Any] = {}  # what each writer writes to (``_sink``)
        # decided here, where the stage runs: a Dask worker or Spark executor writing a part
        # (this object, shipped to it) has not the stage's environment
        self.hashing = _hashing()
        if not single:
            for temp in self.temps.values():
                temp.mkdir(parents=True)

    def write(
        self, name: str, index: int, table: pd.DataFrame | pa.Table, meta: TableMeta | None
    ) -> None:
        """Write part ``index`` of output ``name`` (``meta`` None: the table's own)."""
        import pyarrow.parquet as pq

        table = arrow(table, meta)
        temp = self.temps[name]
        if not self.single:
            part = temp / PART.format(index)
            sink = _sink(part, self.hashing)
            try:
                pq.write_table(table, sink, row_group_size=CHUNK_ROWS, **options(table.schema))
            finally:
                digest = _digest(sink)
            if digest is not None:  # for ``commit``, in the driver: a file beside the part
                (temp / _DIGEST.format(part.name)).write_text(digest, encoding="ascii")
            return
        writer = self.writers.get(name)
        if writer is None:
            first = None
            if temp.exists():  # a linked part: read it, and unlink the name (never write
                first = pq.read_table(temp)  # through a link into another output)
                temp.unlink()
            schema = (table if first is None else first).schema
            self.sinks[name] = _sink(temp, self.hashing)
            writer = self.writers[name] = pq.ParquetWriter(
                self.sinks[name], schema, **options(schema)
            )
            if first is not None:
                writer.write_table(first)
        if not table.num_rows:
            return  # the writer alone gives the file its schema: no empty row group
        try:
            writer.write_table(table.cast(writer.schema), row_group_size=CHUNK_ROWS)
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"part {index} of output '{name}' has other columns or types than the parts "
                f"before it: {exc}"
            ) from None

    def link(self, name: str, index: int, source: Path) -> None:
        """Part ``index`` of output ``name`` is the file ``source`` unchanged: a hard link
        where the filesystem allows (no bytes copied), else a copy."""
        if self.single and (name in self.writers or self.temps[name].exists()):
            self.write(name, index, read_arrow(source), None)  # not the first part: append
            return
        temp = self.temps[name] / PART.format(index) if not self.single else self.temps[name]
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)

    def abandon(self, name: str) -> None:
        """Output ``name`` is not written this time, and its previous version is removed."""
        target = self.targets.pop(name)
        temp = self.temps.pop(name)
        writer = self.writers.pop(name, None)
        if writer is not None:
            writer.close()
        _digest(self.sinks.pop(name, None))
        for path in (temp, target):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _close(self) -> dict[str, str | None]:
        """Close the writers; the MD5 of each output a ``_Hashing`` file took."""
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
        digests = {name: _digest(sink) for name, sink in self.sinks.items()}
        self.sinks.clear()
        return digests

    def commit(self) -> None:
        """Move every output into place."""
        digests = self._close()
        for name, temp in self.temps.items():
            if not temp.exists():
                raise DataError(f"no part of output '{name}' was written")
            parts = _part_digests(temp) if temp.is_dir() else {}
            target = self.targets[name]
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(temp, target)
            _written(target, digests.get(name))
            for part, digest in parts.items():
                _written(target / part, digest)

    def __enter__(self) -> Parts:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def discard(self) -> None:
        self._close()
        for temp in self.temps.values():
            if temp.is_dir():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
