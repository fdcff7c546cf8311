"""Batch prediction of a file with a bundle, chunk by chunk: read (with the training
config's reading options), check against the input schema, transform, predict, write.
Memory is bounded by the chunk size, not the file.

The output has ``row`` (the 0-based row of the input), any ``keep`` columns as they were read,
then the bundle's output columns (see ``Bundle.columns``), then ``warnings``: the unusual
values of the row (``COLUMN: reason; ...``), null when none. Refused rows (malformed, or
unusual under ``production.strict``) stop the run (``fail``: nothing is written) or are left
out and reported (``skip``). ``--rejects FILE`` lists every refused and flagged value.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.bundle.bundle import Bundle, invalid_rows_error
from pipespec.bundle.inputs import Checked, InputProblem
from pipespec.bundle.reader import DEFAULT_CHUNK_ROWS, EXTENSIONS, RowReader
from pipespec.core.atomic import atomic_path
from pipespec.core.documents import plain
from pipespec.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

POLICIES = ("fail", "skip")
EXAMPLES = 20


@dataclass
class BatchResult:
    """What a batch prediction did."""

    rows: int = 0
    predicted: int = 0
    skipped: int = 0
    warned: int = 0  # rows predicted with a warning
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)  # refused values
    warnings: Counter[tuple[str, str]] = field(default_factory=Counter)  # flagged values
    examples: list[InputProblem] = field(default_factory=list)
    seconds: float = 0.0
    rejects: Path | None = None


Progress = Callable[[int, int, str], None]  # (done, total, unit)


def predict_file(
    bundle: Bundle,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    on_invalid: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep: list[str] | None = None,
    sep: str | None = None,
    format: str | None = None,
    rejects: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Predict every row of ``source`` into ``target``: any file the training config could
    read (CSV with its options, Parquet, JSON lines), whatever its extension."""
    import dataclasses

    policy = on_invalid or bundle.policy.on_invalid
    if policy not in POLICIES:
        raise ConfigError(f"--on-invalid must be one of {', '.join(POLICIES)}, not '{policy}'")
    from pipespec.bundle.engine import import_lightgbm, select

    import_lightgbm()  # a Booster only: without scikit-learn, a faster start
    select(bundle)  # the compiled model when its key matches (bundle/engine.py), else LightGBM
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise DataError(f"the output {target} is the input: pick another file name")
    options = bundle.reading if sep is None else dataclasses.replace(bundle.reading, sep=sep)
    reader = RowReader(
        source,
        options,
        wanted=bundle.schema.names,
        keep=list(keep or []),
        chunk_rows=chunk_rows,
        format=format,
    )
    if reader.missing:
        raise DataError(
            f"input {source} lacks column(s) the model needs: {', '.join(reader.missing)}",
            hint=f"Required columns: {', '.join(bundle.schema.names)}",
        )
    threads = threads or bundle.policy.num_threads
    result = BatchResult()
    start = time.perf_counter()
    failed: Checked | None = None
    with ExitStack() as stack:
        writer = stack.enter_context(TableWriter(target))
        bad_rows = stack.enter_context(_Rejects(rejects))
        for chunk in reader:
            checked = bundle.check(chunk.frame, first_row=chunk.start)
            result.rows += checked.rows
            result.warned += checked.n_warned
            result.warnings.update(checked.counts("warning"))
            if checked.problems:
                bad_rows.add(checked)
            if checked.n_invalid:
                result.problems.update(checked.counts("refused"))
                room = EXAMPLES - len(result.examples)
                if room > 0:
                    result.examples.extend(checked.iter_problems(limit=room, kind="refused"))
                if policy == "fail":
                    failed = failed or checked
                    result.skipped += checked.n_invalid
            if failed is None:
                rows = checked.valid.nonzero()[0]
                scores = bundle.score(checked, rows, threads=threads)
                notes = _warnings(checked, rows)
                writer.write(_output(bundle, rows, chunk.start, chunk.keep, scores, notes))
                result.predicted += len(rows)
                result.skipped += checked.n_invalid
            if progress:
                progress(chunk.done, reader.total, reader.unit)
        if failed is not None:
            bad_rows.close()
            raise invalid_rows_error(failed, str(source), total=result.skipped)
        if not writer.started:  # an empty input still gives a table with the columns
            empty = bundle.check(_frame0(bundle))
            notes = _warnings(empty, _ints([]))
            scores = bundle.score(empty)
            writer.write(_output(bundle, _ints([]), 0, _empty_keep(reader), scores, notes))
    result.seconds = time.perf_counter() - start
    result.rejects = Path(rejects) if rejects else None
    return result


def _output(
    bundle: Bundle,
    rows: np.ndarray,
    start: int,
    keep: dict[str, pa.Array],
    scores: np.ndarray,
    warnings: list[str | None],
) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, Any] = {"row": pa.array(rows + start, type=pa.int64())}
    for name, array in keep.items():
        columns[name] = array.take(pa.array(rows, type=pa.int64()))
    for name, values in bundle.columns(scores, kind="arrow").items():
        columns[name] = values if isinstance(values, pa.Array) else pa.array(values)
    columns["warnings"] = pa.array(warnings, type=pa.string())
    return pa.table(columns)


def _warnings(checked: Checked, rows: np.ndarray) -> list[str | None]:
    """Per predicted row, its warnings as ``COLUMN: reason; ...`` (None: none)."""
    if not checked.n_warned:
        return [None] * len(rows)
    per_row = checked.row_warnings()
    return ["; ".join(f"{p.column}: {p.reason}" for p in per_row[int(r)]) or None for r in rows]


def _ints(values: list[int]) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype="int64")


def _frame0(bundle: Bundle) -> Any:
    import pandas as pd

    return pd.DataFrame({name: pd.Series([], dtype=object) for name in bundle.schema.names})


def _empty_keep(reader: RowReader) -> dict[str, pa.Array]:
    import pyarrow as pa

    return {name: pa.array([], type=pa.string()) for name in reader.keep}


class _Rejects:
    """Every refused or flagged value, one line each: row, column, kind (refused or
    warning), reason, value."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self._stack = ExitStack()
        self._fh: Any = None

    def __enter__(self) -> _Rejects:
        if self.path is not None:
            tmp = self._stack.enter_context(atomic_path(self.path))
            self._fh = self._stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
            import csv

            self._csv = csv.writer(self._fh)
            self._csv.writerow(["row", "column", "kind", "reason", "value"])
        return self

    def add(self, checked: Checked) -> None:
        if self._fh is None:
            return
        for p in checked.iter_problems():
            value = plain(p.value)
            kind = "refused" if p.reason in checked.refuse else "warning"
            self._csv.writerow([p.row, p.column, kind, p.reason, "" if value is None else value])

    def close(self) -> None:
        """Finish the file now (a failing run still leaves its report)."""
        self._stack.close()
        self._fh = None

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(None, None, None)


class TableWriter:
    """Write tables chunk by chunk to CSV or Parquet; the file appears only when complete."""

    def __init__(self, path: str | os.PathLike[str], role: str = "output") -> None:
        self.path = Path(path)
        self.kind = EXTENSIONS.get(self.path.suffix.lower())
        if self.kind not in ("csv", "parquet"):
            raise DataError(f"{role} {self.path}: write CSV or Parquet (.csv, .tsv, .parquet, .pq)")
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
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if self._writer is None:
            self._schema = table.schema
            if self.kind == "parquet":
                # dictionary pages only where values repeat (labels, warnings, text): trying
                # them on the scores, which never repeat, took twice the time of the rest
                wordy = [
                    f.name
                    for f in table.schema
                    if not (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))
                ]
                self._writer = pq.ParquetWriter(
                    self._tmp, table.schema, compression="zstd", use_dictionary=wordy
                )
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
