"""The bundle's input schema: what a raw input record must look like.

``infer`` builds it from the raw training rows the model learned from; ``check`` is the one
function that checks raw values against it and conforms them for the fitted transforms. Batch
prediction, the HTTP service and drift monitoring all go through ``check``, so they agree on
what a valid row is and feed the transforms values of the very types training fed them: the
transforms then compute exactly the features the model was evaluated on.

Per column the schema keeps its kind (``numeric``, ``categorical`` or ``datetime``), the raw
type seen in training (``int``, ``float``, ``bool``, ``str`` or ``datetime``), whether training
had missing values, the observed range and the allowed range (observed widened by
``range_margin``), and the observed categories.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipespec.core.errors import BundleError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DATETIME = "datetime"
TYPES = (NUMERIC, CATEGORICAL, DATETIME)
DTYPES = ("int", "float", "bool", "str", "datetime")
MAX_CATEGORIES = 10_000  # beyond this many observed categories, any category is accepted

# Why a value breaks the schema. Stable strings: reports, logs and HTTP errors show them.
ABSENT = "missing field"
NULL = "null not allowed"
WRONG_TYPE = "wrong type"
NOT_FINITE = "not finite"
OUT_OF_RANGE = "out of range"
UNKNOWN_CATEGORY = "unknown category"
REASONS = (ABSENT, NULL, WRONG_TYPE, NOT_FINITE, OUT_OF_RANGE, UNKNOWN_CATEGORY)


class NonFinite(float):
    """A NaN or infinity literal in JSON input: kept apart from null so that it is refused."""

    def __new__(cls, text: str) -> NonFinite:
        return super().__new__(cls, text.replace("Infinity", "inf"))

    def __repr__(self) -> str:
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(float(self))]


@dataclass(frozen=True)
class Column:
    """One raw input column as the model saw it in training."""

    name: str
    type: str  # numeric | categorical | datetime
    dtype: str  # int | float | bool | str | datetime: the raw type in training
    nullable: bool
    min: float | None = None  # observed (numeric)
    max: float | None = None
    low: float | None = None  # allowed (numeric); None: no bound
    high: float | None = None
    categories: tuple[str, ...] | None = None  # observed (categorical); None: any is accepted
    format: str | None = None  # datetime: the format the transforms parse with

    def expected(self) -> str:
        """What a valid value looks like, for messages."""
        if self.type == NUMERIC:
            kind = "a boolean" if self.dtype == "bool" else "a number"
            if self.dtype == "str":
                kind = "a number (or numeric text)"
            if self.low is not None and self.high is not None:
                kind += f" in [{_num(self.low)}, {_num(self.high)}]"
        elif self.type == DATETIME:
            kind = "a date/time string" + (f" like {self.format!r}" if self.format else "")
        else:
            kind = {
                "str": "a string",
                "int": "an integer",
                "float": "a number",
                "bool": "a boolean",
                "datetime": "a date/time string",
            }[self.dtype]
            if self.categories is not None:
                shown = ", ".join(repr(c) for c in self.categories[:8])
                more = f", ... ({len(self.categories)} in all)" if len(self.categories) > 8 else ""
                kind += f" among {shown}{more}"
        return kind + (" or null" if self.nullable else "")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "dtype": self.dtype,
            "nullable": self.nullable,
        }
        if self.type == NUMERIC:
            data.update(min=self.min, max=self.max, low=self.low, high=self.high)
        elif self.type == CATEGORICAL:
            data["categories"] = None if self.categories is None else list(self.categories)
        else:
            data["format"] = self.format
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Column:
        cats = data.get("categories")
        column = cls(
            name=str(data["name"]),
            type=str(data["type"]),
            dtype=str(data["dtype"]),
            nullable=bool(data["nullable"]),
            min=data.get("min"),
            max=data.get("max"),
            low=data.get("low"),
            high=data.get("high"),
            categories=None if cats is None else tuple(str(c) for c in cats),
            format=data.get("format"),
        )
        if column.type not in TYPES or column.dtype not in DTYPES:
            raise ValueError(f"column '{column.name}': unknown type {column.type}/{column.dtype}")
        return column


@dataclass(frozen=True)
class InputSchema:
    """Every raw column the model needs, in the order the transforms list them."""

    columns: tuple[Column, ...]
    ignored: tuple[str, ...] = ()  # columns seen in training but not used (ids, leakage, ...)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {"columns": [c.to_json() for c in self.columns], "ignored": list(self.ignored)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputSchema:
        try:
            return cls(
                columns=tuple(Column.from_json(c) for c in data["columns"]),
                ignored=tuple(str(c) for c in data.get("ignored", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"schema.json is not a valid input schema: {exc}") from None


@dataclass(frozen=True)
class Problem:
    """One value that breaks the schema."""

    row: int  # 0-based row number in the input (record index for HTTP)
    column: str
    reason: str
    value: Any = None
    expected: str = ""

    def message(self) -> str:
        if self.reason == ABSENT:
            return f"field '{self.column}': missing (expected {self.expected})"
        if self.reason == NULL:
            return f"field '{self.column}': null not allowed (expected {self.expected})"
        return (
            f"field '{self.column}': {self.reason}: {_show(self.value)} (expected {self.expected})"
        )


@dataclass
class Checked:
    """The outcome of ``check``: conformed columns, which rows are valid, and what is wrong.

    ``frame`` holds every schema column with the raw type training had (numbers as float64,
    NaN where missing or unreadable). ``keys`` holds, per categorical column, the category of
    each row as text (None where missing). Values that are readable but not allowed (out of
    range, unknown category) are kept, so that monitoring sees them; ``valid`` says which
    rows may be predicted.
    """

    frame: pd.DataFrame
    valid: np.ndarray
    keys: dict[str, Any] = field(default_factory=dict)  # arrays or string Series
    first_row: int = 0
    problems: list[tuple[str, str, np.ndarray, np.ndarray]] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)

    @property
    def n_invalid(self) -> int:
        return int(len(self.valid) - self.valid.sum())

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of bad values per (column, reason)."""
        return {(col, reason): len(rows) for col, reason, rows, _ in self.problems}

    def iter_problems(self, limit: int | None = None) -> Iterator[Problem]:
        """Problems in row order (then schema column order), at most ``limit``."""
        import numpy as np

        if not self.problems:
            return
        rows = np.concatenate([p[2] for p in self.problems])
        which = np.concatenate([np.full(len(p[2]), k) for k, p in enumerate(self.problems)])
        index = np.concatenate([np.arange(len(p[2])) for p in self.problems])
        order = np.argsort(rows, kind="stable")
        if limit is not None:
            order = order[:limit]
        for k in order:
            col, reason, _, values = self.problems[int(which[k])]
            yield Problem(
                row=self.first_row + int(rows[k]),
                column=col,
                reason=reason,
                value=values[int(index[k])],
                expected=self.expected.get(col, ""),
            )


def raw_inputs(transforms: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw columns the transforms read: ``inputs`` (format 2), else ``features`` (1)."""
    specs = transforms.get("inputs")
    if specs is None:
        specs = transforms.get("features")
    if not isinstance(specs, list):
        raise DataError("transforms.json lists no input columns ('inputs' or 'features')")
    return specs


def _date_format(transforms: dict[str, Any], name: str) -> str | None:
    for step in transforms.get("steps") or []:
        if step.get("op") == "date_parts" and step.get("column") == name:
            return step.get("format")
    return None


def infer(
    frame: pd.DataFrame,
    transforms: dict[str, Any],
    *,
    range_margin: float | None,
    closed_categories: bool,
    ignored: list[str],
) -> InputSchema:
    """The input schema of the raw training rows ``frame`` for the fitted ``transforms``."""
    import numpy as np
    import pandas as pd

    columns: list[Column] = []
    for spec in raw_inputs(transforms):
        name, kind = str(spec["name"]), str(spec["type"])
        if name not in frame.columns:
            raise DataError(f"the training rows lack input column '{name}' of transforms.json")
        series = frame[name].reset_index(drop=True)
        dtype = _dtype_of(series)
        if kind == NUMERIC:
            probe = Column(name, NUMERIC, dtype, True)
            values, _ = _numeric(probe, series, strict=False)
            finite = values[np.isfinite(values)]
            lo = float(finite.min()) if len(finite) else None
            hi = float(finite.max()) if len(finite) else None
            low = high = None
            if range_margin is not None and lo is not None and hi is not None:
                width = (hi - lo) or max(abs(lo), 1.0)
                low, high = lo - range_margin * width, hi + range_margin * width
            nullable = bool(np.isnan(values).any())  # training turned unreadable text into NaN
            columns.append(Column(name, NUMERIC, dtype, nullable, lo, hi, low, high))
        elif kind == CATEGORICAL:
            probe = Column(name, CATEGORICAL, dtype, True)
            _, keys, _ = _categorical(probe, series, strict=False)
            # distinct keys first (Arrow's or pandas' hash table), then text: not a Python
            # set over every training row
            keyed = keys if isinstance(keys, pd.Series) else pd.Series(keys, dtype=object)
            present = keyed.dropna()
            seen = sorted({str(k) for k in present.unique()})
            cats = tuple(seen) if closed_categories and len(seen) <= MAX_CATEGORIES else None
            nullable = len(present) < len(keyed)
            columns.append(Column(name, CATEGORICAL, dtype, nullable, categories=cats))
        elif kind == DATETIME:
            probe = Column(name, DATETIME, dtype, True, format=_date_format(transforms, name))
            values, _ = _datetime(probe, series, strict=False)
            nullable = bool(values.isna().any())
            columns.append(Column(name, DATETIME, dtype, nullable, format=probe.format))
        else:
            raise DataError(f"transforms.json: input '{name}' has an unknown type '{kind}'")
    return InputSchema(tuple(columns), tuple(ignored))


def check(
    schema: InputSchema, frame: pd.DataFrame, *, strict_types: bool, first_row: int = 0
) -> Checked:
    """Check ``frame`` against ``schema`` and conform it for the transforms.

    ``strict_types`` is for typed input (JSON): a string where a number is expected is a
    wrong type. Without it (files), strings are parsed, as a CSV needs.
    """
    import numpy as np
    import pandas as pd

    n = len(frame)
    index = frame.index
    plain_index = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    out: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    valid = np.ones(n, dtype=bool)
    problems: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for col in schema.columns:
        present = col.name in frame.columns
        if present:
            series = frame[col.name]
            if not plain_index:
                series = series.reset_index(drop=True)
        else:
            series = pd.Series([None] * n, dtype=object)
        if col.type == NUMERIC:
            values, masks = _numeric(col, series, strict=strict_types)
        elif col.type == CATEGORICAL:
            values, keys[col.name], masks = _categorical(col, series, strict=strict_types)
        else:
            values, masks = _datetime(col, series, strict=strict_types)
        if not present:
            masks = {ABSENT: np.ones(n, dtype=bool)}
        out[col.name] = values
        for reason in REASONS:
            mask = masks.get(reason)
            if mask is None or not mask.any():
                continue
            rows = np.flatnonzero(mask)
            shown = series.iloc[rows].to_numpy(dtype=object)
            problems.append((col.name, reason, rows, shown))
            valid &= ~mask
    conformed = pd.DataFrame(out, index=pd.RangeIndex(n))
    return Checked(
        frame=conformed,
        valid=valid,
        keys=keys,
        first_row=first_row,
        problems=problems,
        expected={c.name: c.expected() for c in schema.columns},
    )


def _numeric(col: Column, series: pd.Series, *, strict: bool) -> tuple[Any, dict[str, Any]]:
    """float64 values (NaN: missing or unreadable) and the masks of what is wrong."""
    import numpy as np
    import pandas as pd

    strict = strict and col.dtype != "str"  # numbers held as text in training: text is fine
    n = len(series)
    null = _null_mask(series)
    wrong = np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(series):
        values = np.where(null, np.nan, series.to_numpy(dtype="float64", na_value=np.nan))
        if col.dtype != "bool":
            wrong = ~null
    elif pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    elif _is_text(series) and not strict:
        values, wrong, blank = _parse_floats(series.to_numpy(dtype=object, na_value=None), null)
        null = null | blank
    else:
        values = np.full(n, np.nan)
        for i, v in enumerate(series.to_numpy(dtype=object)):
            if null[i]:
                continue
            if isinstance(v, NonFinite):
                values[i] = float(v)
            elif isinstance(v, bool | np.bool_):
                if col.dtype == "bool":
                    values[i] = float(v)
                else:
                    wrong[i] = True
            elif isinstance(v, int | float | np.integer | np.floating):
                try:
                    values[i] = float(v)
                except OverflowError:  # an integer beyond float range
                    values[i] = math.inf if v > 0 else -math.inf
            elif isinstance(v, str) and not strict:
                parsed, bad, blank = _parse_floats(np.asarray([v], dtype=object), np.zeros(1, bool))
                values[i], wrong[i], null[i] = parsed[0], bad[0], blank[0]
            else:
                wrong[i] = True
    nonfinite = ~null & ~wrong & ~np.isfinite(values)
    values = np.where(nonfinite | wrong | null, np.nan, values)
    masks: dict[str, Any] = {WRONG_TYPE: wrong, NOT_FINITE: nonfinite}
    if not col.nullable:
        masks[NULL] = null
    if col.low is not None and col.high is not None:
        with np.errstate(invalid="ignore"):
            masks[OUT_OF_RANGE] = (values < col.low) | (values > col.high)
    return values, masks


def _categorical(
    col: Column, series: pd.Series, *, strict: bool
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Values of training's raw type for the transforms, their text keys, and the masks."""
    import numpy as np
    import pandas as pd

    n = len(series)
    null = _null_mask(series)
    wrong = np.zeros(n, dtype=bool)
    values: Any
    keys: Any
    if col.dtype in ("str", "datetime") and series.dtype != object and _is_text(series):
        keys = values = series  # a pandas string column: already what training had
    elif col.dtype in ("str", "datetime"):
        if _is_text(series):
            text = series.to_numpy(dtype=object, na_value=None)
        elif not strict and pd.api.types.is_numeric_dtype(series):
            text = series.astype("str").to_numpy(dtype=object, na_value=None)
        else:
            text = np.full(n, None, dtype=object)
            for i, v in enumerate(series.to_numpy(dtype=object)):
                if null[i]:
                    continue
                if isinstance(v, str):
                    text[i] = v
                elif not strict and isinstance(v, int | np.integer) and not isinstance(v, bool):
                    text[i] = str(v)
                else:
                    wrong[i] = True
        wrong |= ~null & _unencodable(text)
        keys = np.where(null | wrong, None, text)
        values = keys
    else:
        typed, wrong = _typed_values(col.dtype, series, null, strict=strict)
        ok = ~null & ~wrong
        keys = np.full(n, None, dtype=object)
        if col.dtype == "int":
            values = pd.array(np.where(ok, typed, 0), dtype="Int64")
            values[~ok] = pd.NA
            keys[ok] = typed[ok].astype("int64").astype(str).astype(object)
        elif col.dtype == "float":
            values = np.where(ok, typed, np.nan)
            keys[ok] = pd.Series(typed[ok]).astype("str").to_numpy(dtype=object)
        else:
            values = typed.astype(object)
            values[~ok] = None
            keys[ok] = np.where(typed[ok], "True", "False")
    masks: dict[str, Any] = {WRONG_TYPE: wrong}
    if not col.nullable:
        masks[NULL] = null
    if col.categories is not None:
        if n <= 64 and not isinstance(keys, pd.Series):  # a request's few records
            allowed = _category_set(col.categories)
            known = np.fromiter((k in allowed for k in keys), dtype=bool, count=n)
        else:
            series_keys = keys if isinstance(keys, pd.Series) else pd.Series(keys, dtype=object)
            known = np.asarray(series_keys.isin(col.categories), dtype=bool)
        masks[UNKNOWN_CATEGORY] = ~null & ~wrong & ~known
    return values, keys, masks


def _unencodable(text: np.ndarray) -> np.ndarray:
    """Python strings that are not valid Unicode text (a lone surrogate, which JSON's
    ``"\\ud800"`` gives): no table can hold them, so they are the wrong type."""
    import numpy as np

    def bad(v: object) -> bool:
        if not isinstance(v, str) or v.isascii():
            return False
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False

    return np.fromiter((bad(v) for v in text), dtype=bool, count=len(text))


@functools.lru_cache(maxsize=256)
def _category_set(categories: tuple[str, ...]) -> frozenset[str]:
    return frozenset(categories)


def _datetime(col: Column, series: pd.Series, *, strict: bool) -> tuple[Any, dict[str, Any]]:
    """Dates parsed the way the transforms parse them (NaT: missing or unreadable)."""
    import numpy as np
    import pandas as pd

    null = _null_mask(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series
        wrong = np.zeros(len(series), dtype=bool)
    else:
        raw = series.to_numpy(dtype=object)
        text = np.asarray(
            [v if isinstance(v, str) or (not strict and v is not None) else None for v in raw],
            dtype=object,
        )
        wrong = ~null & np.asarray([t is None for t in text], dtype=bool)
        with _quiet():
            parsed = pd.to_datetime(
                pd.Series(text, dtype=object), format=col.format, errors="coerce"
            )
        wrong |= ~null & parsed.isna().to_numpy()
    values = parsed.where(~pd.Series(wrong | null), pd.NaT).reset_index(drop=True)
    masks: dict[str, Any] = {WRONG_TYPE: wrong}
    if not col.nullable:
        masks[NULL] = null
    return values, masks


def _typed_values(
    dtype: str, series: pd.Series, null: np.ndarray, *, strict: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Values of a non-text categorical column as int64, float64 or bool, and wrong types."""
    import numpy as np
    import pandas as pd

    n = len(series)
    wrong = np.zeros(n, dtype=bool)
    target = {"int": "int64", "float": "float64", "bool": "bool"}[dtype]
    out = np.zeros(n, dtype=target)
    if dtype == "bool" and pd.api.types.is_bool_dtype(series):
        out[~null] = series[~null].to_numpy(dtype=bool)
        return out, wrong
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        floats = series.to_numpy(dtype="float64", na_value=np.nan)
        if dtype == "int":
            whole = np.isfinite(floats) & (np.floor(floats) == floats) & (np.abs(floats) < 2**63)
            wrong = ~null & ~whole
            out[~null & whole] = floats[~null & whole].astype("int64")
        elif dtype == "float":
            wrong = ~null & ~np.isfinite(floats)
            out = np.where(wrong | null, 0.0, floats)
        else:
            wrong = ~null
        return out, wrong
    for i, v in enumerate(series.to_numpy(dtype=object)):
        if null[i]:
            continue
        value = _convert(dtype, v, strict=strict)
        if value is None:
            wrong[i] = True
        else:
            out[i] = value
    return out, wrong


def _convert(dtype: str, v: Any, *, strict: bool) -> Any:
    """One value of a non-text categorical column as bool, int or float; None if it is not."""
    if isinstance(v, NonFinite):
        return None
    if dtype == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and not strict and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        return None
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        if strict:
            return None
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if hasattr(v, "item") and not isinstance(v, int | float):
        v = v.item()
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            return None
        return v if dtype == "int" else float(v)
    if not isinstance(v, float) or not math.isfinite(v):
        return None
    if dtype == "int":
        return int(v) if v.is_integer() and abs(v) < 2**63 else None
    return v


def _parse_floats(text: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse text as float64 with Arrow (correctly rounded, like the CSV reader).

    Returns values, unreadable text, and blank text (missing, as training read it)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(text)
    values = np.full(n, np.nan)
    wrong = np.zeros(n, dtype=bool)
    ok = ~null
    stripped = pc.utf8_trim_whitespace(pa.array(text[ok], type=pa.string()))
    blank_ok = np.asarray(pc.equal(stripped, "").to_numpy(zero_copy_only=False), dtype=bool)
    blank = np.zeros(n, dtype=bool)
    blank[np.flatnonzero(ok)[blank_ok]] = True
    ok &= ~blank
    stripped = pc.filter(stripped, pa.array(~blank_ok))
    try:
        values[ok] = pc.cast(stripped, pa.float64()).to_numpy(zero_copy_only=False)
        return values, wrong, blank
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    cache: dict[str, float | None] = {}
    for i, v in zip(np.flatnonzero(ok), stripped.to_pylist(), strict=True):
        if v not in cache:
            try:
                cache[v] = float(pc.cast(pa.scalar(v), pa.float64()).as_py())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                cache[v] = None
        result = cache[v]
        if result is None:
            wrong[i] = True
        else:
            values[i] = result
    return values, wrong, blank


def _null_mask(series: pd.Series) -> np.ndarray:
    """Missing values; a JSON NaN/Infinity literal (``NonFinite``) is a value, not missing."""
    import numpy as np
    import pandas as pd

    if series.dtype == object:  # one pass in Python: cheaper than pandas for a request
        values = series.to_numpy(dtype=object)
        return np.fromiter(
            (
                v is None
                or v is pd.NA
                or v is pd.NaT
                or (isinstance(v, float) and v != v and not isinstance(v, NonFinite))
                for v in values
            ),
            dtype=bool,
            count=len(values),
        )
    return np.array(series.isna().to_numpy(), dtype=bool)


def _is_text(series: pd.Series) -> bool:
    """A column of strings (and missing values) only."""
    import pandas as pd

    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return True
    if series.dtype != object:
        return False
    return all(
        isinstance(v, str) or v is None or (type(v) is float and v != v)
        for v in series.to_numpy(dtype=object)
    )


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


class _quiet:
    """Silence pandas' date-format inference warnings (a format may be unknown)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", UserWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)  # type: ignore[arg-type]


def _num(value: float) -> str:
    return f"{value:.6g}"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, NonFinite):
        return repr(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 60 else text[:57] + "..."
