"""The bundle's input schema: what a raw input record must look like, and the one ``check``.

``infer`` builds the schema from the raw training rows the model learned from. ``check`` is
the one function that checks raw input against it, for batch prediction, the HTTP service,
monitoring and evaluation alike, and conforms every value to the representation the
transforms interpreter works on (``pipespec.bundle.columns``): the type training saw,
as numpy arrays. It takes a table (a pandas frame) or a list of JSON records, and it is
vectorised, so one record costs microseconds and a million rows a few passes.

Problems come in two kinds (``docs/architecture.md``, "Serving policy"):

- *malformed* input is refused: a field missing from a record, a value of the wrong type or
  that cannot be parsed, NaN or infinity;
- *unusual* input is predicted the way training treats it (LightGBM's handling of missing
  values and of values beyond the training range, the transforms' 'other' bucket for unseen
  categories) and flagged as a warning: a number outside the usual range, a category training
  never saw, a null where training had none, a fraction in a column training read as whole
  numbers. ``Strictness`` turns each of the first three kinds into a refusal.

Numbers sent as text (``"0"`` in a JSON record) are read the way a file's text is read, so
the HTTP service and batch prediction take the same values; text that is not a number is a
wrong type in both.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from pipespec.bundle.columns import (
    SMALL,
    Codes,
    as_array,
    is_arrow,
    parse_dates,
    parse_floats,
    positions_in,
    present_keys,
    take,
    text_keys,
    to_objects,
)
from pipespec.core.documents import (
    CATEGORICAL,
    DATETIME,
    NUMERIC,
    Column,
    DatePartsStep,
    InputSchema,
    Strictness,
    Transforms,
)
from pipespec.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_CATEGORIES = 10_000  # beyond this many observed categories, none are recorded

# Why a value is refused or flagged. Stable strings: reports, logs and HTTP answers show them.
ABSENT = "missing field"
WRONG_TYPE = "wrong type"
NOT_FINITE = "not finite"
OUT_OF_RANGE = "out of range"
UNSEEN = "unseen category"
NULL = "unexpected null"
NOT_WHOLE = "not a whole number"  # a fraction where training had only whole numbers
REASONS = (ABSENT, WRONG_TYPE, NOT_FINITE, NULL, OUT_OF_RANGE, UNSEEN, NOT_WHOLE)
MALFORMED = frozenset((ABSENT, WRONG_TYPE, NOT_FINITE))
# the unusual reasons, by the ``Strictness`` field that refuses them
UNUSUAL = {OUT_OF_RANGE: "out_of_range", UNSEEN: "unseen_category", NULL: "unexpected_null"}

__all__ = [
    "ABSENT",
    "MALFORMED",
    "NOT_FINITE",
    "NOT_WHOLE",
    "NULL",
    "OUT_OF_RANGE",
    "UNSEEN",
    "UNUSUAL",
    "WRONG_TYPE",
    "Checked",
    "Column",
    "InputProblem",
    "InputSchema",
    "NonFinite",
    "check",
    "infer",
    "refused_reasons",
]


class NonFinite(float):
    """A NaN or infinity literal in JSON input: kept apart from null so that it is refused."""

    def __new__(cls, text: str) -> NonFinite:
        return super().__new__(cls, text.replace("Infinity", "inf"))

    def __repr__(self) -> str:
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(float(self))]


_LENIENT = Strictness()  # no unusual kind refused: the default policy


@functools.lru_cache(maxsize=64)
def refused_reasons(strict: Strictness) -> frozenset[str]:
    """The reasons that refuse a row under ``strict``: malformed input, and the unusual
    kinds it names."""
    return MALFORMED | {r for r, name in UNUSUAL.items() if getattr(strict, name)}


@dataclass(frozen=True)
class InputProblem:
    """One value that is refused or flagged."""

    row: int  # 0-based row number in the input (record index for HTTP)
    column: str
    reason: str
    value: Any = None
    expected: str = ""

    @property
    def malformed(self) -> bool:
        return self.reason in MALFORMED

    def message(self) -> str:
        if self.reason == ABSENT:
            return f"field '{self.column}': missing (expected {self.expected})"
        if self.reason == NULL:
            return f"field '{self.column}': unexpected null (expected {self.expected})"
        return (
            f"field '{self.column}': {self.reason}: {_show(self.value)} (expected {self.expected})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.row,
            "field": self.column,
            "reason": self.reason,
            "message": self.message(),
        }


@dataclass
class Checked:
    """The outcome of ``check``: the conformed columns, which rows are refused and which are
    flagged, and every problem.

    ``work`` holds every schema column in the interpreter's representation (NaN / None /
    NaT where missing or unreadable). Unusual values (out of range, unseen) are kept as they
    are, so that the model and monitoring see them. ``codes`` holds, per categorical
    column of many rows, the check's lookup of its keys in the schema's categories, which
    the categorical transform reuses (``Codes``).
    """

    work: dict[str, np.ndarray]
    rows: int
    refused: np.ndarray  # bool per row
    warned: np.ndarray  # bool per row: predicted, with a warning
    refuse: frozenset[str]
    first_row: int = 0
    problems: list[tuple[str, str, np.ndarray, np.ndarray]] = field(default_factory=list)
    expected: Mapping[str, str] = field(default_factory=dict)
    codes: dict[str, Codes] = field(default_factory=dict)
    # columns whose every value is of the usual kind (``_usual``: a few values, each a finite
    # number in range or a known category): nothing in them is missing or noted
    usual: frozenset[str] = frozenset()

    @property
    def valid(self) -> np.ndarray:
        return ~self.refused

    @property
    def n_invalid(self) -> int:
        return int(self.refused.sum())

    @property
    def n_warned(self) -> int:
        return int(self.warned.sum())

    def counts(self, kind: str | None = None) -> dict[tuple[str, str], int]:
        """Number of problem values per (column, reason); ``kind``: 'refused' or 'warning'."""
        return {
            (col, reason): len(rows)
            for col, reason, rows, _ in self.problems
            if kind is None or (reason in self.refuse) == (kind == "refused")
        }

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The conformed columns of ``rows`` only (a new mapping)."""
        if len(rows) == self.rows:
            return dict(self.work)
        return {name: take(values, rows) for name, values in self.work.items()}

    def codes_of(self, work: Mapping[str, Any], rows: np.ndarray | None) -> dict[str, Codes]:
        """``codes`` for ``work``, the columns of ``rows`` that ``take`` gave (None: all)."""
        if rows is None or len(rows) == self.rows:
            return self.codes
        return {
            name: known.take(rows, work[name])
            for name, known in self.codes.items()
            if len(rows) > SMALL and name in work
        }

    def iter_problems(
        self, limit: int | None = None, kind: str | None = None
    ) -> Iterator[InputProblem]:
        """Problems in row order (then schema column order), at most ``limit``; ``kind``:
        'refused' or 'warning' only."""
        import numpy as np

        chosen = [
            p for p in self.problems if kind is None or (p[1] in self.refuse) == (kind == "refused")
        ]
        if not chosen:
            return
        rows = np.concatenate([p[2] for p in chosen])
        which = np.concatenate([np.full(len(p[2]), k) for k, p in enumerate(chosen)])
        index = np.concatenate([np.arange(len(p[2])) for p in chosen])
        order = np.argsort(rows, kind="stable")
        if limit is not None:
            order = order[:limit]
        for k in order:
            col, reason, _, values = chosen[int(which[k])]
            yield InputProblem(
                row=self.first_row + int(rows[k]),
                column=col,
                reason=reason,
                value=values[int(index[k])],
                expected=self.expected.get(col, ""),
            )

    def row_warnings(self) -> list[list[InputProblem]]:
        """Per row, the warnings it got (in schema column order)."""
        out: list[list[InputProblem]] = [[] for _ in range(self.rows)]
        for p in self.iter_problems(kind="warning"):
            out[p.row - self.first_row].append(p)
        return out


# --- inference ---------------------------------------------------------------------------


def infer(
    frame: pd.DataFrame,
    transforms: Transforms,
    *,
    range_margin: float | None,
    ignored: list[str],
) -> InputSchema:
    """The input schema of the raw training rows ``frame`` for the fitted ``transforms``.
    A column of ``frame`` may also be an Arrow float64 ``ChunkedArray`` (a double column of
    a Parquet table, ``assemble``'s table rows) or a ``FloatColumn`` (its range found as the
    rows were read, the package stage's): the same column as its pandas float64 Series
    gives, found without copying it."""
    import numpy as np

    columns: list[Column] = []
    for spec in transforms.inputs:
        name, kind = spec.name, spec.type
        if name not in frame.columns:
            raise DataError(f"the training rows lack input column '{name}' of transforms.json")
        series = frame[name]
        if _is_arrow_float(series):  # a column of an Arrow table (``assemble``)
            arrow = series
            if kind == NUMERIC:
                series = FloatColumn(FloatRange.of(arrow), arrow.to_pandas)
            else:
                series = arrow.to_pandas()
        if isinstance(series, FloatColumn):
            found = series.range.found() if kind == NUMERIC else None
            if found is not None:
                columns.append(_numeric_column(name, "float", *found, range_margin))
                continue
            series = series.series()  # a zero extreme, or not numeric: numpy's answer
        dtype = _dtype_of(series)
        probe = Column(name, kind, dtype, True, format=_date_format(transforms, name))
        values, _, _ = _conform(probe, _raw(series), typed=False)
        if kind == NUMERIC:
            finite = values[np.isfinite(values)]
            lo = float(finite.min()) if len(finite) else None
            hi = float(finite.max()) if len(finite) else None
            nullable = bool(np.isnan(values).any())  # training turned unreadable text into NaN
            columns.append(_numeric_column(name, dtype, nullable, lo, hi, range_margin))
        elif kind == CATEGORICAL:
            seen, nullable = _categories(text_keys(values))
            cats = tuple(seen) if len(seen) <= MAX_CATEGORIES else None
            columns.append(Column(name, CATEGORICAL, dtype, nullable, categories=cats))
        elif kind == DATETIME:
            nullable = bool(np.isnat(values).any())
            columns.append(Column(name, DATETIME, dtype, nullable, format=probe.format))
        else:
            raise DataError(f"transforms.json: input '{name}' has an unknown type '{kind}'")
    return InputSchema(tuple(columns), tuple(ignored))


def _numeric_column(
    name: str,
    dtype: str,
    nullable: bool,
    lo: float | None,
    hi: float | None,
    range_margin: float | None,
) -> Column:
    """A numeric column of the schema: its training range and the range serving allows."""
    low = high = None
    if range_margin is not None and lo is not None and hi is not None:
        width = (hi - lo) or max(abs(lo), 1.0)
        low, high = lo - range_margin * width, hi + range_margin * width
    return Column(name, NUMERIC, dtype, nullable, lo, hi, low, high)


def _is_arrow_float(values: Any) -> bool:
    import pyarrow as pa

    return isinstance(values, pa.ChunkedArray) and pa.types.is_float64(values.type)


@dataclass(frozen=True)
class FloatRange:
    """Whether an Arrow float64 column has a missing value, and its smallest and largest
    finite values, as ``infer`` finds them on its pandas Series (null and NaN both missing),
    built a chunk at a time (``add``): no copy of the whole column, and a chunk (a Parquet
    row group) can be freed once it is added."""

    nullable: bool = False
    lo: float | None = None
    hi: float | None = None

    @classmethod
    def of(cls, values: Any) -> FloatRange:
        return cls().add(values)

    def add(self, values: Any) -> FloatRange:
        """This range and that of ``values`` (an Arrow float64 array or column), one chunk
        at a time."""
        import numpy as np

        found = self
        for chunk in getattr(values, "chunks", [values]):
            part = chunk.to_numpy(zero_copy_only=False)  # NaN where null
            if not len(part):
                continue
            low, high = part.min(), part.max()  # NaN if any is NaN
            nullable = found.nullable
            if not (np.isfinite(low) and np.isfinite(high)):  # a missing or infinite value
                nullable = nullable or bool(np.isnan(part).any())
                part = part[np.isfinite(part)]
                if not len(part):
                    found = FloatRange(nullable, found.lo, found.hi)
                    continue
                low, high = part.min(), part.max()
            low, high = float(low), float(high)
            lo = low if found.lo is None else min(found.lo, low)
            hi = high if found.hi is None else max(found.hi, high)
            found = FloatRange(nullable, lo, hi)
        return found

    def found(self) -> tuple[bool, float | None, float | None] | None:
        """(nullable, smallest, largest), or None where a zero is an extreme (which of 0.0
        and -0.0 numpy calls the smallest depends on where they lie)."""
        if 0 in (self.lo, self.hi):
            return None
        return self.nullable, self.lo, self.hi


@dataclass(frozen=True)
class FloatColumn:
    """A float64 column of the training rows as ``infer`` takes it instead of the column:
    its ``FloatRange``, and ``series`` making the column itself, the pandas Series numpy's
    answer is found on where the range cannot give it."""

    range: FloatRange
    series: Callable[[], pd.Series]


def _categories(keys: Any) -> tuple[list[str], bool]:
    """The sorted distinct category keys, and whether any is missing (Arrow text is read
    by Arrow, without a Python object per row)."""
    if is_arrow(keys):
        import pyarrow.compute as pc

        distinct = pc.unique(keys).drop_null().to_pylist()
        return sorted(str(k) for k in distinct), keys.null_count > 0
    import pandas as pd

    series = pd.Series(keys, dtype=object)
    present = series.dropna()
    return sorted(str(k) for k in present.unique()), len(present) < len(series)


def _date_format(transforms: Transforms, name: str) -> str | None:
    for step in transforms.steps:
        if isinstance(step, DatePartsStep) and step.column == name:
            return step.format
    return None


def _dtype_of(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "str"


# --- checking ----------------------------------------------------------------------------

_ABSENT = object()  # a field a record does not have


def check(
    schema: InputSchema,
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    typed: bool,
    strict: Strictness | None = None,
    first_row: int = 0,
) -> Checked:
    """Check raw input against ``schema`` and conform it for the transforms.

    ``rows`` is a frame (a file's rows; absent columns are reported for every row) or a list
    of JSON records. ``typed`` is for JSON input: a number where text or a boolean is
    expected is a wrong type. Numbers sent as text are parsed either way, as a CSV needs, so
    a record and a file give one reading.
    """
    import numpy as np

    refuse = refused_reasons(strict or _LENIENT)
    n = len(rows)
    work: dict[str, np.ndarray] = {}
    refused = np.zeros(n, dtype=bool)
    warned = np.zeros(n, dtype=bool)
    problems: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    codes: dict[str, Codes] = {}
    usual: list[str] = []
    for col, read in zip(schema.columns, _read_columns(schema, rows, typed=typed), strict=True):
        if not isinstance(read, _Read):  # a few values, all of the usual kind: conformed
            work[col.name] = read
            usual.append(col.name)
            continue
        raw, absent, whole, positions = read.raw, read.absent, read.whole, read.positions
        values, null, wrong = read.values, read.null, read.wrong
        masks: list[tuple[str, np.ndarray]] = []
        if absent is None and col.type == CATEGORICAL and not (null.any() or wrong.any()):
            if col.categories is not None:  # the usual case: only unseen categories to find
                unseen = ~_known(col.categories, values, positions, codes, col.name)
                if unseen.any():
                    masks.append((UNSEEN, unseen))
            work[col.name] = values
            _note(col.name, masks, raw, refuse, refused, warned, problems)
            continue
        numeric = absent is None and col.type == NUMERIC
        within = numeric and _within(values, col.low, col.high)
        if within or (numeric and np.isfinite(values).all()):
            # every value a finite number (no null, no wrong type: both are NaN here); the
            # usual case found within the range in two reductions (NaN is no minimum),
            # otherwise only the range is left to check
            if not within and col.low is not None and col.high is not None:
                outside = (values < col.low) | (values > col.high)
                if outside.any():
                    masks.append((OUT_OF_RANGE, outside))
            if col.dtype == "int" and not whole:
                fraction = values != np.floor(values)
                if fraction.any():
                    masks.append((NOT_WHOLE, fraction))
            work[col.name] = values
            _note(col.name, masks, raw, refuse, refused, warned, problems)
            continue
        ok = ~wrong
        if absent is not None:
            masks.append((ABSENT, absent))
            null = null & ~absent
            ok &= ~absent
        if wrong.any():
            masks.append((WRONG_TYPE, wrong))
        if col.type == NUMERIC:
            finite = np.isfinite(values)
            if not finite.all():
                nonfinite = ~finite & ~null & ok
                if nonfinite.any():
                    masks.append((NOT_FINITE, nonfinite))
                    values = np.where(nonfinite, np.nan, values)
        if not col.nullable and null.any():
            masks.append((NULL, null))
        if col.type == NUMERIC and col.low is not None and col.high is not None:
            outside = (values < col.low) | (values > col.high)
            if outside.any():
                masks.append((OUT_OF_RANGE, outside))
        if col.type == NUMERIC and col.dtype == "int" and not whole:
            with np.errstate(invalid="ignore"):
                fraction = np.isfinite(values) & (values != np.floor(values))
            if fraction.any():
                masks.append((NOT_WHOLE, fraction))
        if col.type == CATEGORICAL and col.categories is not None:
            unseen = ~null & ok & ~_known(col.categories, values, positions, codes, col.name)
            if unseen.any():
                masks.append((UNSEEN, unseen))
        work[col.name] = values
        _note(col.name, masks, raw, refuse, refused, warned, problems)
    return Checked(
        work=work,
        rows=n,
        refused=refused,
        warned=warned & ~refused if problems else warned,
        refuse=refuse,
        first_row=first_row,
        problems=problems,
        expected=_Expected(schema),
        codes=codes,
        usual=frozenset(usual),
    )


SIDE_BY_SIDE_ROWS = 16_384  # from this many rows, a frame's columns are read side by side


class _Read(NamedTuple):
    """One column of the input as read and conformed (``_conform``), before its checks.
    ``positions``: each key's position in the column's categories (``positions_in``), for a
    categorical column of more than ``SMALL`` rows."""

    raw: Any
    values: Any
    null: Any
    wrong: Any
    absent: np.ndarray | None = None
    whole: bool = False  # the values are whole numbers by their type
    positions: np.ndarray | None = None


def _read_columns(
    schema: InputSchema, rows: pd.DataFrame | Sequence[Mapping[str, Any]], *, typed: bool
) -> Iterator[_Read | np.ndarray]:
    """Every column of ``rows`` read, in the schema's order. A large frame's columns are
    read on a thread pool, side by side: Arrow's hash tables (one per text column, most of a
    large check's time) and numpy's passes release the GIL, and one column's reading never
    depends on another's."""
    n = len(rows)
    if not hasattr(rows, "columns"):
        return iter([_read_listed(col, rows, typed) for col in schema.columns])
    frame: Any = rows
    # the columns are taken from the frame here, by this thread: the workers read arrays only
    jobs = [(col, frame[col.name] if col.name in frame.columns else None) for col in schema.columns]
    pool = _pool() if n >= SIDE_BY_SIDE_ROWS and len(jobs) > 1 else None
    if pool is None:
        return (_read_series(col, series, n, typed) for col, series in jobs)
    return pool.map(lambda job: _read_series(job[0], job[1], n, typed), jobs)


def _read_series(col: Column, series: pd.Series | None, n: int, typed: bool) -> _Read:
    """A frame's column (None: the frame lacks it, so every row's value is absent)."""
    import numpy as np

    if series is None:
        raw = np.full(n, None, dtype=object)
        return _conformed(col, raw, typed, absent=np.ones(n, dtype=bool))
    coded = _dictionary_text(col, series)
    if coded is not None:  # a dictionary column: its lookup is done on the dictionary
        return _conformed(col, coded[0], typed, positions=coded[1])
    # an integer column holds whole numbers only: no fraction to look for
    return _conformed(col, _raw(series), typed, whole=series.dtype.kind in "iu")


def _read_listed(col: Column, rows: Sequence[Mapping[str, Any]], typed: bool) -> _Read | np.ndarray:
    """A field of JSON records (absent from some, maybe); a few values all of the usual
    kind come back conformed, with nothing to note (``_usual``: the common request, whose
    microseconds count)."""
    n = len(rows)
    listed = [r.get(col.name, _ABSENT) for r in rows]
    if n <= SMALL:
        usual = _usual(col, listed)
        if usual is not None:
            return usual
    import numpy as np

    raw = np.empty(n, dtype=object)
    raw[:] = listed
    absent = None
    if any(v is _ABSENT for v in listed):
        absent = np.fromiter((v is _ABSENT for v in listed), bool, n)
        raw[absent] = None
    return _conformed(col, raw, typed, absent=absent)


def _conformed(
    col: Column,
    raw: Any,
    typed: bool,
    *,
    absent: np.ndarray | None = None,
    whole: bool = False,
    positions: np.ndarray | None = None,
) -> _Read:
    """``raw`` conformed, and a categorical column's keys looked up in its categories (once
    per row, by Arrow's hash table) unless ``positions`` already holds the lookup."""
    values, null, wrong = _conform(col, raw, typed=typed)
    categories = col.categories if col.type == CATEGORICAL else None
    if positions is None and categories is not None and len(raw) > SMALL:
        positions = positions_in(text_keys(values), categories)
    return _Read(raw, values, null, wrong, absent, whole, positions)


_POOL: list[tuple[int, Any]] = []  # (the process it belongs to, its ThreadPoolExecutor)
_POOL_LOCK = threading.Lock()


def _pool() -> Any:
    """The thread pool large checks read columns on, one per process (a fork, as the stage
    runner makes, starts its own); None on a single CPU."""
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (workers or 1) < 2:
        return None
    with _POOL_LOCK:
        if not _POOL or _POOL[0][0] != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipespec-check")
            _POOL[:] = [(os.getpid(), executor)]
        return _POOL[0][1]


def _within(values: np.ndarray, low: float | None, high: float | None) -> bool:
    """Every value finite and in ``[low, high]`` (any finite value without a range), from the
    smallest and the largest alone: a NaN anywhere makes both NaN, and an infinity is one of
    them."""
    if len(values) <= SMALL:
        return False  # a few values: the masks cost no more than the reductions
    lo, hi = float(values.min()), float(values.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return False
    return low is None or high is None or (low <= lo and hi <= high)


def _usual(col: Column, listed: list[Any]) -> np.ndarray | None:
    """The conformed values of a few JSON values when every one is of the usual kind (a
    finite number within the range, a whole one where training had only whole numbers; a
    known category as text), else None: the general path then finds and notes what is not.
    Value by value in Python, which for one record is several times cheaper than the
    vectorised path's array passes; the values are the ones that path gives."""
    import numpy as np

    if col.type == NUMERIC:
        floats: list[float] = []
        low, high, whole = col.low, col.high, col.dtype == "int"
        for v in listed:
            t = type(v)
            if t is float:
                f = v
            elif t is int:
                if not -(2**53) <= v <= 2**53:
                    return None
                f = float(v)
            else:
                return None
            if f - f != 0.0:  # NaN or infinity
                return None
            if low is not None and high is not None and not low <= f <= high:
                return None
            if whole and f != math.floor(f):
                return None
            floats.append(f)
        return np.array(floats, dtype="float64")
    if col.type == CATEGORICAL and col.dtype in ("str", "datetime"):
        allowed = None if col.categories is None else _category_set(col.categories)
        for v in listed:
            if type(v) is not str or not v.isascii():
                return None
            if allowed is not None and v not in allowed:
                return None
        return np.array(listed, dtype=object)  # text only: one value per row
    return None


def _note(
    name: str,
    masks: list[tuple[str, np.ndarray]],
    raw: Any,
    refuse: frozenset[str],
    refused: np.ndarray,
    warned: np.ndarray,
    problems: list[tuple[str, str, np.ndarray, np.ndarray]],
) -> None:
    """Record a column's problems, and mark their rows refused or warned (in place)."""
    import numpy as np

    for reason, mask in masks:
        where = np.flatnonzero(mask)
        problems.append((name, reason, where, to_objects(take(raw, where))))
        if reason in refuse:
            refused |= mask
        else:
            warned |= mask


class _Expected(Mapping[str, str]):
    """What a usual value of each column looks like, worked out only for columns asked."""

    def __init__(self, schema: InputSchema) -> None:
        self._schema = schema

    def __getitem__(self, name: str) -> str:
        return _expected(self._schema.column(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._schema.names)

    def __len__(self) -> int:
        return len(self._schema.columns)


_EXPECTED: dict[int, tuple[Column, str]] = {}


def _expected(col: Column) -> str:
    found = _EXPECTED.get(id(col))
    if found is None or found[0] is not col:
        if len(_EXPECTED) > 4096:
            _EXPECTED.clear()
        found = _EXPECTED[id(col)] = (col, col.expected())
    return found[1]


def _known(
    categories: tuple[str, ...],
    values: Any,
    positions: np.ndarray | None,
    codes: dict[str, Codes],
    name: str,
) -> np.ndarray:
    """Which keys of ``values`` are among ``categories``. ``positions``: their lookup, made
    when the column was read (``_Read``), which is kept in ``codes`` for the categorical
    transform; None for a few values, looked up here one by one."""
    import numpy as np

    if positions is None:
        keys = to_objects(text_keys(values))
        allowed = _category_set(categories)
        return np.fromiter((k in allowed for k in keys), bool, len(keys))
    codes[name] = Codes(values, categories, positions)
    return positions >= 0


_SETS: dict[int, tuple[tuple[str, ...], frozenset[str]]] = {}


def _category_set(categories: tuple[str, ...]) -> frozenset[str]:
    """The categories as a set, built once per schema column (cached by identity)."""
    found = _SETS.get(id(categories))
    if found is None or found[0] is not categories:
        if len(_SETS) > 512:
            _SETS.clear()
        found = _SETS[id(categories)] = (categories, frozenset(categories))
    return found[1]


def _dictionary_text(col: Column, series: pd.Series) -> tuple[Any, np.ndarray] | None:
    """A text column held as a dictionary (a pandas categorical of text, as
    ``pd.read_parquet(..., read_dictionary=[...])`` gives): its values as Arrow text, and
    each row's position in the schema's categories (-1: not there or missing), looked up
    once per distinct value on the dictionary instead of once per row. None for any other
    column (which ``_raw`` reads)."""
    import numpy as np
    import pandas as pd

    if col.type != CATEGORICAL or col.categories is None or col.dtype != "str":
        return None
    dtype = series.dtype
    if not isinstance(dtype, pd.CategoricalDtype) or len(series) <= SMALL:
        return None
    if pd.api.types.infer_dtype(dtype.categories, skipna=False) != "string":
        return None
    import pyarrow as pa

    try:
        text = pa.array(series.array).cast(pa.string())
        dictionary = pa.array(dtype.categories.to_numpy(dtype=object), type=pa.string())
    except (pa.ArrowException, UnicodeEncodeError, TypeError):
        return None  # text Arrow cannot hold (a lone surrogate): read value by value
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    table = np.append(positions_in(dictionary, col.categories), np.int32(-1))
    return text, table[series.cat.codes.to_numpy()]  # code -1 (missing) reads the last


def _raw(series: pd.Series) -> np.ndarray:
    """A frame's column as a numpy array: ``as_array``, but JSON's NaN/Infinity literals
    (``NonFinite``) stay values, not missing."""
    import numpy as np

    if series.dtype == object:
        values = series.to_numpy(dtype=object)
        if len(values) <= SMALL or not _all_plain(values):
            out = np.empty(len(values), dtype=object)
            out[:] = [
                None if (v is None or (type(v) is float and v != v) or _is_na(v)) else v
                for v in values
            ]
            return out
    return as_array(series)


def _all_plain(values: np.ndarray) -> bool:
    """No NonFinite among the values (the vectorised path treats them as missing)."""
    import pandas as pd

    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty", "boolean")


def _all_text(values: np.ndarray) -> bool:
    """Only text and missing values (None)."""
    import pandas as pd

    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def _is_na(v: Any) -> bool:
    import pandas as pd

    return v is pd.NA or v is pd.NaT


def _conform(col: Column, raw: np.ndarray, *, typed: bool) -> tuple[Any, Any, Any]:
    """(values in the interpreter's representation, null mask, wrong-type mask)."""
    if col.type == DATETIME:
        return _dates(col, raw, typed)
    if col.type == CATEGORICAL and col.dtype in ("str", "datetime"):
        return _texts(raw, typed)
    if col.type == CATEGORICAL and col.dtype == "bool":
        return _bools(raw, typed)
    return _numbers(col, raw, typed)


def _numbers(col: Column, raw: np.ndarray, typed: bool) -> tuple[Any, Any, Any]:
    """float64 values; text is parsed (a JSON record's ``"0"`` as a file's); booleans are
    numbers only where training's column was boolean."""
    import numpy as np

    n = len(raw)
    kind = "U" if is_arrow(raw) else raw.dtype.kind
    if kind == "U":  # Arrow text, read from a file
        values, wrong, blank = parse_floats(raw)
        null = ~present_keys(raw) | blank
        if typed and col.dtype != "str":
            wrong = ~null
    elif kind in "fiu":
        values = np.asarray(raw, dtype="float64")
        null = np.isnan(values)
        wrong = np.zeros(n, dtype=bool)
    elif kind == "M":
        null = np.isnat(raw)
        wrong = ~null
        values = np.full(n, np.nan)
    elif n > SMALL and _all_text(raw):  # numbers as text: read as a file's text is
        null = ~present_keys(raw)
        values = np.full(n, np.nan)
        wrong = np.zeros(n, dtype=bool)
        present = np.flatnonzero(~null)
        if len(present):
            parsed, bad, blank = parse_floats(raw[present])
            values[present], wrong[present] = parsed, bad
            null[present[blank]] = True
    else:
        values = np.full(n, np.nan)
        null = np.zeros(n, dtype=bool)
        wrong = np.zeros(n, dtype=bool)
        texts: list[int] = []
        for i, v in enumerate(raw):
            t = type(v)
            if t is float:
                if v == v:
                    values[i] = v
                else:
                    null[i] = True
            elif v is None:
                null[i] = True
            elif t is int:
                try:
                    values[i] = float(v)
                except OverflowError:
                    values[i] = math.inf if v > 0 else -math.inf
            elif t is NonFinite:
                values[i] = float(v)
            elif t is bool or t is np.bool_:
                if col.dtype == "bool":
                    values[i] = float(v)
                else:
                    wrong[i] = True
            elif t is str:
                if _encodable(v):
                    texts.append(i)
                else:
                    wrong[i] = True
            elif isinstance(v, np.integer | np.floating):
                values[i] = float(v)
                null[i] = values[i] != values[i]
            else:
                wrong[i] = True
        if texts:
            where = np.asarray(texts)
            parsed, bad, blank = parse_floats(raw[where])
            values[where] = parsed
            wrong[where] = bad
            null[where] = blank
    if col.type == CATEGORICAL:  # a category is a finite number (a whole one for int)
        odd = ~null & ~np.isfinite(values)
        if col.dtype == "int":
            odd |= ~null & ((values != np.round(values)) | (np.abs(values) >= 2**63))
        wrong = wrong | odd
    bad = wrong | null
    if bad.any():
        values = np.where(bad, np.nan, values)
    return values, null, wrong


def _texts(raw: np.ndarray, typed: bool) -> tuple[Any, Any, Any]:
    """Text values (None where missing); numbers of an untyped file become their keys."""
    import numpy as np

    n = len(raw)
    if is_arrow(raw):
        return raw, ~present_keys(raw), np.zeros(n, dtype=bool)
    if raw.dtype != object:
        if typed:
            null = np.isnat(raw) if raw.dtype.kind == "M" else np.isnan(raw)
            values = np.full(n, None, dtype=object)
            return values, null, ~null
        values = text_keys(raw)
        null = np.fromiter((v is None for v in values), bool, n)
        return values, null, np.zeros(n, dtype=bool)
    values = np.empty(n, dtype=object)
    null = np.zeros(n, dtype=bool)
    wrong = np.zeros(n, dtype=bool)
    if n > SMALL and _all_text(raw) and _arrow_text(raw):
        return raw, ~present_keys(raw), wrong
    for i, v in enumerate(raw):
        if v is None:
            null[i] = True
        elif type(v) is str:
            if _encodable(v):
                values[i] = v
            else:
                wrong[i] = True
        elif typed or isinstance(v, bool | np.bool_):
            wrong[i] = True
        elif isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, NonFinite):
            values[i] = text_keys(np.asarray([float(v)]))[0]
        else:
            wrong[i] = True
    return values, null, wrong


def _arrow_text(raw: np.ndarray) -> bool:
    """Every value is text Arrow can hold (no lone surrogate, which JSON's ``"\\ud800"``
    gives), checked in one pass."""
    import pyarrow as pa

    try:
        pa.array(raw, type=pa.string())
    except (pa.ArrowException, UnicodeEncodeError, TypeError):
        return False
    return True


def _encodable(v: str) -> bool:
    if v.isascii():
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bools(raw: np.ndarray, typed: bool) -> tuple[Any, Any, Any]:
    """True/False (None where missing); text 'true'/'false' in untyped files."""
    import numpy as np

    raw = to_objects(raw)
    n = len(raw)
    values = np.empty(n, dtype=object)
    null = np.zeros(n, dtype=bool)
    wrong = np.zeros(n, dtype=bool)
    for i, v in enumerate(raw.tolist() if raw.dtype != object else raw):
        if v is None or (type(v) is float and v != v):
            null[i] = True
        elif isinstance(v, bool | np.bool_):
            values[i] = bool(v)
        elif not typed and type(v) is str and v.strip().lower() in ("true", "false"):
            values[i] = v.strip().lower() == "true"
        else:
            wrong[i] = True
    return values, null, wrong


def _dates(col: Column, raw: np.ndarray, typed: bool) -> tuple[Any, Any, Any]:
    """Dates parsed the way the transforms parse them (NaT: missing or unreadable)."""
    import numpy as np

    raw = to_objects(raw)
    n = len(raw)
    if raw.dtype.kind == "M":
        values = raw.astype("datetime64[ns]")
        null = np.isnat(values)
        return values, null, np.zeros(n, dtype=bool)
    if raw.dtype != object:
        null = np.isnan(raw) if raw.dtype.kind == "f" else np.zeros(n, dtype=bool)
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"), null, ~null
    null = np.fromiter((v is None for v in raw), bool, n)
    text = np.array(
        [v if type(v) is str or (not typed and v is not None) else None for v in raw],
        dtype=object,
    )
    wrong = ~null & np.fromiter((t is None for t in text), bool, n)
    values = parse_dates(text, col.format)
    wrong |= ~null & np.isnat(values)
    return values, null, wrong


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, NonFinite):
        return repr(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 60 else text[:57] + "..."
