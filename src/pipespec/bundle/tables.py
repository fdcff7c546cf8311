"""Reading and writing tables in chunks, so batch prediction and monitoring handle files
larger than memory: CSV and JSON lines are streamed, Parquet is read batch by batch.

CSV columns are read as text and parsed by ``pipespec.bundle.schema.check`` (a bad value then
costs one row, not the whole file). JSON lines may hold records, or the entries that
``pipespec serve --log`` writes (their ``input`` is the record).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path
from pipespec.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
# pandas' default missing-value markers, so a CSV reads the way `dataset=csv` read it
NULL_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
DEFAULT_CHUNK_ROWS = 65_536


def format_of(path: Path, role: str) -> str:
    """``csv``, ``parquet`` or ``jsonl`` from the file name, or a DataError naming it."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"cannot tell the format of {role} {path} from its extension '{path.suffix}'",
            hint=f"Use one of: {', '.join(sorted(FORMATS))}.",
        )
    return kind


@dataclass
class Chunk:
    """Consecutive rows of an input file."""

    frame: pd.DataFrame  # the wanted columns the file has
    start: int  # row number (0-based) of the first row
    done: int  # progress so far, in the reader's unit (rows or bytes)
    keep: dict[str, pa.Array]  # pass-through columns, as read


class TableReader:
    """Chunks of ``path``: the ``wanted`` columns it has, plus ``keep`` columns as they are.

    ``columns`` lists the file's columns; ``total`` and ``unit`` size a progress bar.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        wanted: list[str],
        keep: list[str] = (),  # type: ignore[assignment]
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        sep: str = ",",
        null_values: list[str] | tuple[str, ...] = NULL_VALUES,
        role: str = "input",
    ) -> None:
        self.path = Path(path)
        self.role = role
        self.kind = format_of(self.path, role)
        if not self.path.is_file():
            raise DataError(f"{role} file not found: {self.path}")
        self.chunk_rows = max(1, int(chunk_rows))
        self.sep = "\t" if self.path.suffix.lower() == ".tsv" and sep == "," else sep
        self.null_values = list(null_values)
        self.columns = self._columns()
        missing_keep = [c for c in keep if c not in self.columns]
        if missing_keep:
            raise DataError(
                f"--keep names column(s) not in {self.path}: {', '.join(missing_keep)}",
                hint=f"Its columns: {', '.join(self.columns[:30])}",
            )
        self.keep = list(keep)
        self.wanted = [c for c in wanted if c in self.columns]
        self.missing = [c for c in wanted if c not in self.columns]
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            self.unit, self.total = "rows", pq.ParquetFile(self.path).metadata.num_rows
        else:
            self.unit, self.total = "bytes", self.path.stat().st_size

    def _columns(self) -> list[str]:
        try:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                return list(pq.ParquetFile(self.path).schema_arrow.names)
            if self.kind == "csv":
                import pyarrow.csv as pcsv

                with pcsv.open_csv(
                    self.path,
                    read_options=pcsv.ReadOptions(block_size=1 << 16),
                    parse_options=pcsv.ParseOptions(delimiter=self.sep),
                    convert_options=pcsv.ConvertOptions(
                        column_types={}, strings_can_be_null=True, null_values=self.null_values
                    ),
                ) as reader:
                    return list(reader.schema.names)
            names: dict[str, None] = {}
            with open(self.path, encoding="utf-8") as fh:
                for number, line in enumerate(fh, 1):
                    if line.strip():
                        names.update(dict.fromkeys(_record(line, number, self.path)))
                    if number >= 1000:
                        break
            return list(names)
        except DataError:
            raise
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {self.role} {self.path}: {exc}") from None

    def __iter__(self) -> Iterator[Chunk]:
        try:
            if self.kind == "parquet":
                yield from self._parquet()
            elif self.kind == "csv":
                yield from self._csv()
            else:
                yield from self._jsonl()
        except DataError:
            raise
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(f"cannot read {self.role} {self.path}: {exc}") from None

    def _parquet(self) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        names = list(dict.fromkeys([*self.wanted, *self.keep]))
        start = 0
        with pq.ParquetFile(self.path) as pf:
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=names):
                yield self._chunk(batch, start, start + batch.num_rows)
                start += batch.num_rows

    def _csv(self) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        names = list(dict.fromkeys([*self.wanted, *self.keep]))
        start = 0
        with ExitStack() as stack:
            fh = stack.enter_context(open(self.path, "rb"))
            reader = stack.enter_context(
                pcsv.open_csv(
                    fh,
                    read_options=pcsv.ReadOptions(block_size=max(1 << 20, self.chunk_rows * 64)),
                    parse_options=pcsv.ParseOptions(delimiter=self.sep),
                    convert_options=pcsv.ConvertOptions(
                        column_types=dict.fromkeys(names, pa.string()),
                        include_columns=names,
                        strings_can_be_null=True,
                        null_values=self.null_values,
                    ),
                )
            )
            for batch in reader:
                if batch.num_rows:
                    yield self._chunk(batch, start, fh.tell())
                    start += batch.num_rows

    def _jsonl(self) -> Iterator[Chunk]:
        import pandas as pd
        import pyarrow as pa

        start = 0
        records: list[dict[str, Any]] = []
        with open(self.path, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                line = raw.decode("utf-8", errors="replace")
                if line.strip():
                    records.append(_record(line, number, self.path))
                if len(records) >= self.chunk_rows:
                    yield self._records_chunk(records, start, fh.tell(), pd, pa)
                    start += len(records)
                    records = []
            if records:
                yield self._records_chunk(records, start, fh.tell(), pd, pa)

    def _records_chunk(
        self, records: list[dict[str, Any]], start: int, done: int, pd: Any, pa: Any
    ) -> Chunk:
        frame = pd.DataFrame({c: [r.get(c) for r in records] for c in self.wanted}, dtype=object)
        keep = {c: pa.array([_plain(r.get(c)) for r in records]) for c in self.keep}
        return Chunk(frame, start, done, keep)

    def _chunk(self, batch: pa.RecordBatch, start: int, done: int) -> Chunk:
        import pyarrow as pa

        table = pa.Table.from_batches([batch])
        frame = table.select(self.wanted).to_pandas() if self.wanted else _empty(batch.num_rows)
        keep = {c: table.column(c).combine_chunks() for c in self.keep}
        return Chunk(frame, start, done, keep)


def _empty(rows: int) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(index=pd.RangeIndex(rows))


def _record(line: str, number: int, path: Path) -> dict[str, Any]:
    from pipespec.bundle.schema import NonFinite

    try:
        value = json.loads(line, parse_constant=NonFinite)
    except ValueError as exc:
        raise DataError(f"{path}, line {number}: not valid JSON: {exc}") from None
    if isinstance(value, dict) and isinstance(value.get("input"), dict):
        value = value["input"]  # an entry of `pipespec serve --log`
    if not isinstance(value, dict):
        raise DataError(f"{path}, line {number}: expected a JSON object (one record per line)")
    return value


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


class TableWriter:
    """Write tables chunk by chunk to CSV or Parquet; the file appears only when complete."""

    def __init__(self, path: str | os.PathLike[str], role: str = "output") -> None:
        self.path = Path(path)
        self.kind = format_of(self.path, role)
        if self.kind == "jsonl":
            raise DataError(f"{role} {self.path}: write CSV or Parquet (.csv, .parquet)")
        self._stack = ExitStack()
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def __enter__(self) -> TableWriter:
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    @property
    def started(self) -> bool:
        return self._writer is not None

    def write(self, table: pa.Table) -> None:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if self._writer is None:
            self._schema = table.schema
            if self.kind == "parquet":
                self._writer = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
            else:
                self._writer = pcsv.CSVWriter(self._tmp, table.schema)
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
        self._stack.__exit__(*exc)  # type: ignore[arg-type]
