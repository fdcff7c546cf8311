"""Batch prediction of a file with a bundle, chunk by chunk: read, check against the input
schema, transform, predict, write. Memory is bounded by the chunk size, not the file.

The output has ``row`` (the 0-based row of the input), any ``keep`` columns as they were read,
then the bundle's output columns (see ``Bundle.columns``). Rows that break the schema stop
the run (``fail``: nothing is written) or are left out and reported (``skip``).
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
from pipespec.bundle.schema import Checked, Problem
from pipespec.bundle.tables import DEFAULT_CHUNK_ROWS, NULL_VALUES, TableReader, TableWriter
from pipespec.core.atomic import atomic_path
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
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[Problem] = field(default_factory=list)
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
    rejects: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Predict every row of ``source`` (CSV, Parquet or JSON lines) into ``target``."""
    policy = on_invalid or str(bundle.policy.get("on_invalid", "fail"))
    if policy not in POLICIES:
        raise ConfigError(f"--on-invalid must be one of {', '.join(POLICIES)}, not '{policy}'")
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise DataError(f"the output {target} is the input: pick another file name")
    csv = bundle.policy.get("csv", {})
    reader = TableReader(
        source,
        wanted=bundle.schema.names,
        keep=list(keep or []),
        chunk_rows=chunk_rows,
        sep=sep or csv.get("sep", ","),
        null_values=[*NULL_VALUES, *csv.get("na_values", [])],
    )
    if reader.missing:
        raise DataError(
            f"input {source} lacks column(s) the model needs: {', '.join(reader.missing)}",
            hint=f"Required columns: {', '.join(bundle.schema.names)}",
        )
    threads = threads or int(bundle.policy.get("num_threads", 1))
    result = BatchResult()
    start = time.perf_counter()
    failed: Checked | None = None
    with ExitStack() as stack:
        writer = stack.enter_context(TableWriter(target))
        bad_rows = stack.enter_context(_Rejects(rejects))
        for chunk in reader:
            checked = bundle.check(chunk.frame, strict_types=False, first_row=chunk.start)
            result.rows += len(chunk.frame)
            if checked.n_invalid:
                result.problems.update(checked.counts())
                room = EXAMPLES - len(result.examples)
                if room > 0:
                    result.examples.extend(checked.iter_problems(limit=room))
                bad_rows.add(checked)
                if policy == "fail":
                    failed = failed or checked
                    result.skipped += checked.n_invalid
            if failed is None:
                rows = checked.valid.nonzero()[0]
                scores = bundle.score(checked.frame.iloc[rows], threads=threads)
                writer.write(_output(bundle, rows, chunk.start, chunk.keep, scores))
                result.predicted += len(rows)
                result.skipped += checked.n_invalid
            if progress:
                progress(chunk.done, reader.total, reader.unit)
        if failed is not None:
            bad_rows.close()
            raise invalid_rows_error(failed, str(source), total=result.skipped)
        if not writer.started:  # an empty input still gives a table with the columns
            empty = bundle.check(_frame0(bundle), strict_types=False).frame
            writer.write(_output(bundle, _ints([]), 0, _empty_keep(reader), bundle.score(empty)))
    result.seconds = time.perf_counter() - start
    result.rejects = Path(rejects) if rejects else None
    return result


def _output(
    bundle: Bundle, rows: np.ndarray, start: int, keep: dict[str, pa.Array], scores: np.ndarray
) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, Any] = {"row": pa.array(rows + start, type=pa.int64())}
    for name, array in keep.items():
        columns[name] = array.take(pa.array(rows, type=pa.int64()))
    for name, values in bundle.columns(scores).items():
        columns[name] = pa.array(values)
    return pa.table(columns)


def _ints(values: list[int]) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype="int64")


def _frame0(bundle: Bundle) -> Any:
    import pandas as pd

    return pd.DataFrame({name: pd.Series([], dtype=object) for name in bundle.schema.names})


def _empty_keep(reader: TableReader) -> dict[str, pa.Array]:
    import pyarrow as pa

    return {name: pa.array([], type=pa.string()) for name in reader.keep}


class _Rejects:
    """Rows that break the schema, one line per bad value: row, column, reason, value."""

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
            self._csv.writerow(["row", "column", "reason", "value"])
        return self

    def add(self, checked: Checked) -> None:
        if self._fh is None:
            return
        for p in checked.iter_problems():
            value = p.value.item() if hasattr(p.value, "item") else p.value
            self._csv.writerow([p.row, p.column, p.reason, "" if value is None else value])

    def close(self) -> None:
        """Finish the file now (a failing run still leaves its report)."""
        self._stack.close()
        self._fh = None

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(None, None, None)
