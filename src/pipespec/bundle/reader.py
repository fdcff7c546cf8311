"""The one reader of raw rows: how ``load`` reads the training files, and how ``predict``,
``monitor`` and the replay of serve logs read any other file, with the same ``ReadOptions``.

``read_rows`` reads a whole file as training does (pandas' parser, its type inference, then
``clean``). ``RowReader`` reads a file in chunks, so batch prediction and monitoring take
files larger than memory: CSV with the same parser and options, every wanted column as text
(the input schema then conforms each value to the type training saw, so a chunk's own type
inference never decides a category key); Parquet batch by batch; JSON lines record by record
(a line may be an entry of ``pipespec serve --log``, whose ``input`` is the record).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.documents import DEFAULT_NA_VALUES, DTYPES, FORMATS, ReadOptions
from pipespec.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
DEFAULT_CHUNK_ROWS = 65_536


def format_of(path: Path, options: ReadOptions, explicit: str | None = None) -> str:
    """How to read ``path``: ``explicit`` (``--format``), else its extension, else the
    format the training files had (Adult's ``adult.test`` is a CSV file)."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not '{explicit}'")
        return explicit
    return EXTENSIONS.get(path.suffix.lower(), options.format)


def read_rows(
    path: str | os.PathLike[str], options: ReadOptions, *, where: str, format: str | None = None
) -> pd.DataFrame:
    """Every row of a file, read as the training config reads it (``where`` names the file
    and the key it came from in errors)."""
    import pandas as pd

    path = Path(path)
    kind = format_of(path, options, format)
    if kind == "parquet":  # a file, or a directory of files (a partitioned dataset)
        try:
            # self_destruct: Arrow frees each column as pandas takes it
            frame = pd.read_parquet(
                path, to_pandas_kwargs={"self_destruct": True, "split_blocks": True}
            )
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {where} as Parquet: {exc}") from None
    elif kind == "jsonl":
        frame = pd.DataFrame(list(_json_lines(path)))
    else:
        try:
            frame = pd.read_csv(path, **options.csv_kwargs())
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, LookupError) as exc:
            raise DataError(f"cannot read {where} as CSV: {exc}") from None
        if not options.header and not options.columns:
            frame.columns = [f"Column_{i}" for i in range(frame.shape[1])]  # LightGBM's naming
    return clean(frame, options, where)


def read_arrow_rows(
    path: str | os.PathLike[str], options: ReadOptions, *, where: str, format: str | None = None
) -> pa.Table:
    """``read_rows`` as an Arrow table. A Parquet file that the options leave as it is
    (nothing to strip, no markers, no dtypes) is read by Arrow alone, without pandas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    plain = not (options.strip or options.na_values or options.dtypes)
    if format_of(path, options, format) == "parquet" and plain:
        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {where} as Parquet: {exc}") from None
        index = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}") or b"{}")
        stored = [c for c in index.get("index_columns", []) if isinstance(c, str)]
        table = table.drop_columns([c for c in stored if c in table.column_names])
        table = table.rename_columns([str(c) for c in table.column_names])
        return table.replace_schema_metadata(None)  # no pandas index to restore
    return pa.Table.from_pandas(read_rows(path, options, where=where, format=format),
                                preserve_index=False)  # fmt: skip


def clean(
    frame: pd.DataFrame, options: ReadOptions, where: str, *, some_columns: bool = False
) -> pd.DataFrame:
    """Column names as text, spaces stripped (``strip``), then the missing-value markers
    that stood next to those spaces, then ``dtypes`` applied, then (``coerce_numeric``) what
    is not a number in the ``numeric`` columns read as missing. ``some_columns``: the frame
    holds only the columns a reader wanted, so a ``dtypes`` column it lacks is no error."""
    import pandas as pd

    frame.columns = [str(c) for c in frame.columns]
    if options.strip:
        frame.columns = [c.strip() for c in frame.columns]
        for column in frame.columns:
            if pd.api.types.is_string_dtype(frame[column]):
                frame[column] = frame[column].str.strip()
        if options.na_values:
            frame = frame.replace(list(options.na_values), None)
    frame = _apply_dtypes(frame, options, where, some_columns=some_columns)
    if options.coerce_numeric and options.numeric:
        for column in options.numeric:
            if column in frame.columns and column not in options.dtypes:
                numbers = read_numbers(frame[column])
                frame[column] = numbers.values.where(~numbers.refused, None)
    return frame


def clean_records(records: list[dict[str, Any]], options: ReadOptions) -> list[dict[str, Any]]:
    """``clean`` for JSON records: text stripped and missing-value markers made null, as
    training read its files; with ``coerce_numeric``, a value of a ``numeric`` column that
    is not a finite number (text, ``Infinity``, beyond ``MAX_MAGNITUDE``) made null, as load
    read it. Records are returned as given when the options change nothing."""
    markers = set(options.na_values)
    numeric = set(options.numeric or ()) if options.coerce_numeric else set()
    if not options.strip and not markers and not numeric:
        return records
    out = []
    for record in records:
        fixed = {}
        for key, value in record.items():
            if isinstance(value, str):
                if options.strip:
                    value = value.strip()
                if value in markers:
                    value = None
            if key in numeric and value is not None and not _finite_number(value):
                value = None
            fixed[key] = value
        out.append(fixed)
    return out


# --- numbers -----------------------------------------------------------------------------

# Tokens that stand for "missing" in files found in the wild (UCI's '?', '-', 'n/a', ...).
# ``load`` tells them from data when it refuses a column; ``schema infer`` proposes them
# as ``dataset.na_values``.
MARKER_WORDS = frozenset(
    {"?", "-", "--", "---", ".", "*", "na", "n/a", "n.a.", "nan", "null", "none", "nil",
     "missing", "unknown", "#n/a", "#na", "empty", "void", "not available"}
)  # fmt: skip


def marker_like(token: str) -> bool:
    """``token`` looks like a missing-value marker: a known word, or only punctuation."""
    text = token.strip()
    return text.lower() in MARKER_WORDS or (bool(text) and not any(c.isalnum() for c in text))


# A number's magnitude beyond this is refused like infinity: the arithmetic that follows
# (the input schema's usual range, derived features) would overflow (1e308 - -1e308 = inf).
MAX_MAGNITUDE = 1e300


@dataclass
class Numbers:
    """A column read as numbers: the values (float64, NaN where missing or refused), which
    entries are not numbers (text such as ``'?'``), which are numbers but not finite or
    beyond ``MAX_MAGNITUDE`` (``inf``, ``1e309``, ``1e308``); ``refused`` is either."""

    values: pd.Series
    text: Any  # numpy bool array
    nonfinite: Any

    @property
    def refused(self) -> Any:
        return self.text | self.nonfinite


def read_numbers(series: pd.Series) -> Numbers:
    """``series`` read as numbers the way every reader of the contract reads them: text is
    parsed by Arrow (as serving parses numeric text), blank text is missing. ``load`` decides
    with it whether a column's tokens are numbers; ``clean`` (``coerce_numeric``) applies it
    to the columns load read as numbers."""
    import numpy as np
    import pandas as pd

    from pipespec.bundle.columns import parse_floats

    n = len(series)
    text = np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(series):
        values = series.astype("float64").to_numpy()
    elif pd.api.types.is_numeric_dtype(series):
        values = series.astype("float64").to_numpy(na_value=np.nan)
    else:
        raw = series.astype(object).to_numpy()
        values = np.full(n, np.nan)
        present = np.flatnonzero(pd.notna(series).to_numpy())
        strings = [i for i in present if isinstance(raw[i], str)]
        others = [i for i in present if not isinstance(raw[i], str)]
        if strings:
            where = np.asarray(strings)
            parsed, bad, _ = parse_floats(raw[where])
            values[where], text[where] = parsed, bad
        for i in others:
            try:
                values[i] = float(raw[i])
            except (TypeError, ValueError, OverflowError):
                text[i] = True
    with np.errstate(invalid="ignore"):
        nonfinite = ~np.isnan(values) & ~(np.abs(values) <= MAX_MAGNITUDE)
    values = np.where(text | nonfinite, np.nan, values)
    return Numbers(pd.Series(values, index=series.index, dtype="float64"), text, nonfinite)


def _finite_number(value: Any) -> bool:
    """A JSON value that reads as a finite number within ``MAX_MAGNITUDE`` (a boolean is
    left for the input schema to judge)."""
    import math

    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        try:
            return math.isfinite(float(value)) and abs(float(value)) <= MAX_MAGNITUDE
        except OverflowError:
            return False
    if isinstance(value, str):
        import pandas as pd

        return not bool(read_numbers(pd.Series([value], dtype=object)).refused[0])
    return True


def _apply_dtypes(
    frame: pd.DataFrame, options: ReadOptions, where: str, *, some_columns: bool = False
) -> pd.DataFrame:
    """``dtypes`` overrides, with an error naming the column and a few bad values."""
    import pandas as pd

    markers = set(DEFAULT_NA_VALUES) | set(options.na_values)
    for column, dtype in options.dtypes.items():
        if column not in frame.columns:
            if some_columns:
                continue
            raise DataError(f"dataset.dtypes.{column}: no such column in {where}")
        if dtype not in DTYPES:
            raise ConfigError(
                f"dataset.dtypes.{column}: unknown type '{dtype}'; types: {', '.join(DTYPES)}"
            )
        series = frame[column]
        if dtype in ("float", "int"):
            if not pd.api.types.is_numeric_dtype(series):  # 'NA', '' ... mean missing here
                text = series.astype("str").str.strip()
                series = series.where(~text.isin(markers) & series.notna(), None)
            numbers = read_numbers(series)
            if numbers.refused.any() and not options.coerce_numeric:
                bad = series[numbers.refused]
                examples = ", ".join(repr(v) for v in bad.unique()[:3])
                raise DataError(
                    f"column '{column}' (dataset.dtypes.{column}={dtype}) in {where}: "
                    f"{len(bad)} value(s) are not finite numbers, e.g. {examples}",
                    hint="Add them to dataset.na_values if they mean 'missing' "
                    "(or set dataset.coerce_numeric: true to read them as missing).",
                )
            series = numbers.values
        frame[column] = series.astype(DTYPES[dtype])
    return frame


@dataclass
class Chunk:
    """Consecutive rows of an input file."""

    frame: pd.DataFrame  # the wanted columns the file has
    start: int  # row number (0-based) of the first row
    done: int  # progress so far, in the reader's unit (rows or bytes)
    keep: dict[str, pa.Array]  # pass-through columns


class RowReader:
    """Chunks of ``path``: the ``wanted`` columns it has, plus ``keep`` columns.

    ``columns`` lists the file's columns; ``total`` and ``unit`` size a progress bar.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: ReadOptions,
        *,
        wanted: list[str],
        keep: list[str] | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        format: str | None = None,
        role: str = "input",
    ) -> None:
        self.path = Path(path)
        self.role = role
        self.kind = format_of(self.path, options, format)
        if self.kind == "csv" and self.path.suffix.lower() == ".tsv" and options.sep == ",":
            options = dataclasses.replace(options, sep="\t")
        self.options = options
        if not self.path.is_file():
            raise DataError(f"{role} file not found: {self.path}")
        self.chunk_rows = max(1, int(chunk_rows))
        self.columns = self._columns()
        keep = list(keep or [])
        missing_keep = [c for c in keep if c not in self.columns]
        if missing_keep:
            raise DataError(
                f"--keep names column(s) not in {self.path}: {', '.join(missing_keep)}",
                hint=f"Its columns: {', '.join(self.columns[:30])}",
            )
        self.keep = keep
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
                import pandas as pd

                head = pd.read_csv(self.path, nrows=1, **self._csv_kwargs(None))
                names = [str(c) for c in head.columns]
                if not self.options.header and not self.options.columns:
                    names = [f"Column_{i}" for i in range(len(names))]
                if self.options.strip:
                    names = [c.strip() for c in names]
                return names
            seen: dict[str, None] = {}
            for number, record in enumerate(_json_lines(self.path), 1):
                seen.update(dict.fromkeys(record))
                if number >= 1000:
                    break
            return list(seen)
        except DataError:
            raise
        except (OSError, ValueError, UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"cannot read {self.role} {self.path}: {exc}") from None

    def _csv_kwargs(self, names: list[str] | None) -> dict[str, Any]:
        kwargs = self.options.csv_kwargs()
        if names is not None:  # every column of the file named, so usecols can pick by name
            kwargs.update(header=0 if self.options.header else None, names=names)
        return kwargs

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
        except (OSError, ValueError, UnicodeDecodeError) as exc:  # ArrowInvalid, ParserError
            raise DataError(f"cannot read {self.role} {self.path}: {exc}") from None

    def _finish(self, frame: pd.DataFrame, start: int, done: int) -> Chunk:
        import pyarrow as pa

        keep = {c: pa.array(frame[c].astype(object).where(frame[c].notna(), None))
                for c in self.keep}  # fmt: skip
        wanted = clean(frame[self.wanted].copy(), self.options, str(self.path), some_columns=True)
        return Chunk(wanted, start, done, keep)

    def _parquet(self) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        names = list(dict.fromkeys([*self.wanted, *self.keep]))
        start = 0
        with pq.ParquetFile(self.path) as pf:
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=names):
                frame = batch.to_pandas()
                yield self._finish(frame, start, start + batch.num_rows)
                start += batch.num_rows

    def _csv(self) -> Iterator[Chunk]:
        import pandas as pd

        names = list(dict.fromkeys([*self.wanted, *self.keep]))
        start = 0
        with open(self.path, "rb") as fh:
            kwargs = self._csv_kwargs(self.columns)  # the header line, if any, is replaced
            with pd.read_csv(
                fh,
                usecols=names,
                dtype=dict.fromkeys(names, "str"),
                chunksize=self.chunk_rows,
                **kwargs,
            ) as reader:
                for frame in reader:
                    if len(frame):
                        yield self._finish(frame.reset_index(drop=True), start, fh.tell())
                        start += len(frame)

    def _jsonl(self) -> Iterator[Chunk]:
        import pandas as pd

        start = 0
        records: list[dict[str, Any]] = []
        names = list(dict.fromkeys([*self.wanted, *self.keep]))

        def chunk(done: int) -> Chunk:
            frame = pd.DataFrame({c: [r.get(c) for r in records] for c in names}, dtype=object)
            return self._finish(frame, start, done)

        with open(self.path, "rb") as fh:
            for record in _json_lines(self.path, fh):
                records.append(record)
                if len(records) >= self.chunk_rows:
                    yield chunk(fh.tell())
                    start += len(records)
                    records = []
            if records:
                yield chunk(fh.tell())


def _json_lines(path: Path, fh: Any = None) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file (``NaN``/``Infinity`` kept apart from null)."""
    from pipespec.bundle.inputs import NonFinite

    own = fh is None
    if own:
        fh = open(path, "rb")  # noqa: SIM115 (closed below)
    try:
        for number, raw in enumerate(fh, 1):
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            try:
                value = json.loads(line, parse_constant=NonFinite)
            except ValueError as exc:
                raise DataError(f"{path}, line {number}: not valid JSON: {exc}") from None
            if isinstance(value, dict) and isinstance(value.get("input"), dict):
                value = value["input"]  # an entry of `pipespec serve --log`
            if not isinstance(value, dict):
                raise DataError(
                    f"{path}, line {number}: expected a JSON object (one record per line)"
                )
            yield value
    finally:
        if own:
            fh.close()
