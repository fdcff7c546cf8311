"""The bundle's input schema: what a raw input record must look like.

``infer`` builds it from the raw training rows the model learned from; ``check`` is the one
function that checks raw values against it and conforms them for the fitted transforms. Batch
prediction, the HTTP service and drift monitoring all go through ``check``, so they agree on
what a valid row is and feed the model exactly the same numbers.

Per column the schema keeps its kind (``numeric`` or ``categorical``), the raw type seen in
training (``int``, ``float``, ``bool`` or ``str``), whether training had missing values, the
observed range and the allowed range (observed widened by ``range_margin``), and the observed
categories.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipespec.core.errors import BundleError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DTYPES = ("int", "float", "bool", "str")
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
    type: str  # numeric | categorical
    dtype: str  # int | float | bool | str: the raw type in training
    nullable: bool
    min: float | None = None  # observed (numeric)
    max: float | None = None
    low: float | None = None  # allowed (numeric); None: no bound
    high: float | None = None
    categories: tuple[str, ...] | None = None  # observed (categorical); None: any is accepted

    def expected(self) -> str:
        """What a valid value looks like, for messages."""
        if self.type == NUMERIC:
            kind = "a boolean" if self.dtype == "bool" else "a number"
            if self.low is not None and self.high is not None:
                kind += f" in [{_num(self.low)}, {_num(self.high)}]"
        else:
            kind = {
                "str": "a string",
                "int": "an integer",
                "float": "a number",
                "bool": "a boolean",
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
        else:
            data["categories"] = None if self.categories is None else list(self.categories)
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
        )
        if column.type not in (NUMERIC, CATEGORICAL) or column.dtype not in DTYPES:
            raise ValueError(f"column '{column.name}': unknown type {column.type}/{column.dtype}")
        return column


@dataclass(frozen=True)
class InputSchema:
    """Every raw column the model needs, in the order the transforms expect them."""

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
        return (
            f"field '{self.column}': {self.reason}: {_show(self.value)} (expected {self.expected})"
        )


@dataclass
class Checked:
    """The outcome of ``check``: conformed columns, which rows are valid, and what is wrong.

    ``frame`` holds every schema column: numbers as float64 (NaN where missing or unreadable)
    and categories as the strings the transforms were fitted on (None where missing). Values
    that are readable but not allowed (out of range, unknown category) are kept, so that
    monitoring sees them; ``valid`` says which rows may be predicted.
    """

    frame: pd.DataFrame
    valid: np.ndarray
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
        order = np.argsort(rows, kind="stable")
        flat = [(col, reason, i) for col, reason, r, _ in self.problems for i in range(len(r))]
        for n, k in enumerate(order):
            if limit is not None and n >= limit:
                return
            col, reason, i = flat[k]
            values = next(p[3] for p in self.problems if p[0] == col and p[1] == reason)
            yield Problem(
                row=self.first_row + int(rows[k]),
                column=col,
                reason=reason,
                value=values[i],
                expected=self.expected.get(col, ""),
            )


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
    for feature in transforms["features"]:
        name = feature["name"]
        series = frame[name]
        dtype = _dtype_of(series)
        nullable = bool(series.isna().any())
        if feature["type"] == NUMERIC:
            values = pd.to_numeric(series, errors="raise").astype("float64").to_numpy()
            values = values[np.isfinite(values)]
            lo = float(values.min()) if len(values) else None
            hi = float(values.max()) if len(values) else None
            low = high = None
            if range_margin is not None and lo is not None and hi is not None:
                width = (hi - lo) or max(abs(lo), 1.0)
                low, high = lo - range_margin * width, hi + range_margin * width
            columns.append(Column(name, NUMERIC, dtype, nullable, lo, hi, low, high))
        else:
            probe = Column(name, CATEGORICAL, dtype, True)
            canon, _ = _categorical(probe, series, strict=False)
            seen = sorted({str(v) for v in canon if v is not None})
            cats = tuple(seen) if closed_categories and len(seen) <= MAX_CATEGORIES else None
            columns.append(Column(name, CATEGORICAL, dtype, nullable, categories=cats))
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
    out: dict[str, Any] = {}
    valid = np.ones(n, dtype=bool)
    problems: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for col in schema.columns:
        if col.name not in frame.columns:
            if col.type == NUMERIC:
                out[col.name] = np.full(n, np.nan)
            else:
                out[col.name] = np.full(n, None, dtype=object)
            masks = {ABSENT: np.ones(n, dtype=bool)}
            raw = np.full(n, None, dtype=object)
        else:
            series = frame[col.name].reset_index(drop=True)
            if col.type == NUMERIC:
                values, masks = _numeric(col, series, strict=strict_types)
            else:
                values, masks = _categorical(col, series, strict=strict_types)
            out[col.name] = values
            raw = None
        for reason in REASONS:
            mask = masks.get(reason)
            if mask is None or not mask.any():
                continue
            rows = np.flatnonzero(mask)
            shown = raw if raw is not None else _raw_values(frame[col.name], rows)
            problems.append((col.name, reason, rows, shown[rows] if raw is not None else shown))
            valid &= ~mask
    conformed = pd.DataFrame(out, index=pd.RangeIndex(n))
    return Checked(
        frame=conformed,
        valid=valid,
        first_row=first_row,
        problems=problems,
        expected={c.name: c.expected() for c in schema.columns},
    )


def _numeric(col: Column, series: pd.Series, *, strict: bool) -> tuple[Any, dict[str, Any]]:
    import numpy as np
    import pandas as pd

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
        values, wrong = _parse_floats(series, null)
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
                values[i] = float(v)
            elif isinstance(v, str) and not strict:
                parsed, bad = _parse_floats(pd.Series([v], dtype=object), np.zeros(1, bool))
                values[i], wrong[i] = parsed[0], bad[0]
            else:
                wrong[i] = True
    nonfinite = ~null & ~wrong & ~np.isfinite(values)
    values = np.where(nonfinite | wrong, np.nan, values)
    masks: dict[str, Any] = {WRONG_TYPE: wrong, NOT_FINITE: nonfinite}
    if not col.nullable:
        masks[NULL] = null
    if col.low is not None and col.high is not None:
        with np.errstate(invalid="ignore"):
            masks[OUT_OF_RANGE] = (values < col.low) | (values > col.high)
    return values, masks


def _categorical(col: Column, series: pd.Series, *, strict: bool) -> tuple[Any, dict[str, Any]]:
    """Canonical category strings: what ``series.astype("str")`` gave in training."""
    import numpy as np
    import pandas as pd

    n = len(series)
    null = _null_mask(series)
    wrong = np.zeros(n, dtype=bool)
    if col.dtype == "str":
        if _is_text(series):
            canon = series.to_numpy(dtype=object, na_value=None)
        elif not strict and pd.api.types.is_numeric_dtype(series):
            canon = series.astype("str").to_numpy(dtype=object, na_value=None)
        else:
            canon = np.full(n, None, dtype=object)
            for i, v in enumerate(series.to_numpy(dtype=object)):
                if null[i]:
                    continue
                if isinstance(v, str):
                    canon[i] = v
                elif not strict and isinstance(v, int | np.integer) and not isinstance(v, bool):
                    canon[i] = str(v)
                else:
                    wrong[i] = True
    else:
        typed, wrong = _typed_values(col.dtype, series, null, strict=strict)
        ok = ~null & ~wrong
        canon = np.full(n, None, dtype=object)
        if ok.any():
            canon[ok] = pd.Series(typed[ok]).astype("str").to_numpy(dtype=object)
    canon = np.where(null | wrong, None, canon)
    masks: dict[str, Any] = {WRONG_TYPE: wrong}
    if not col.nullable:
        masks[NULL] = null
    if col.categories is not None:
        known = pd.Series(canon, dtype=object).isin(col.categories).to_numpy()
        masks[UNKNOWN_CATEGORY] = ~null & ~wrong & ~known
    return canon, masks


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
            whole = np.isfinite(floats) & (np.floor(floats) == floats)
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
    import math

    if isinstance(v, NonFinite):
        return None
    if dtype == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and not strict and v.lower() in ("true", "false"):
            return v.lower() == "true"
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
    if not isinstance(v, int | float) and not hasattr(v, "item"):
        return None
    v = v.item() if hasattr(v, "item") else v
    if not isinstance(v, int | float) or not math.isfinite(v):
        return None
    if dtype == "int":
        return int(v) if float(v).is_integer() else None
    return float(v)


def _parse_floats(series: pd.Series, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse text as float64 with Arrow (correctly rounded, like the CSV reader)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(series)
    text = series.to_numpy(dtype=object, na_value=None)
    values = np.full(n, np.nan)
    wrong = np.zeros(n, dtype=bool)
    ok = ~null
    try:
        parsed = pc.cast(pa.array(text[ok], type=pa.string()), pa.float64())
        values[ok] = parsed.to_numpy(zero_copy_only=False)
        return values, wrong
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    cache: dict[Any, float | None] = {}
    for i in np.flatnonzero(ok):
        v = text[i]
        if v not in cache:
            try:
                cache[v] = float(pc.cast(pa.scalar(str(v)), pa.float64()).as_py())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                cache[v] = None
        result = cache[v]
        if result is None:
            wrong[i] = True
        else:
            values[i] = result
    return values, wrong


def _null_mask(series: pd.Series) -> np.ndarray:
    """Missing values; a JSON NaN/Infinity literal (``NonFinite``) is a value, not missing."""
    import numpy as np

    null = np.asarray(series.isna().to_numpy(), dtype=bool)
    if series.dtype == object and null.any():
        values = series.to_numpy(dtype=object)
        null &= np.fromiter((not isinstance(v, NonFinite) for v in values), bool, len(values))
    return null


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
    return "str"


def _raw_values(series: pd.Series, rows: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.asarray(series.reset_index(drop=True).to_numpy(dtype=object)[rows], dtype=object)


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
