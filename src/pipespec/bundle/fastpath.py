"""The serving path for a few JSON records, without pandas: same rules, same numbers.

The HTTP service gets one record, or a short list, as Python dicts. Checking them with
``schema.check`` and computing their features with ``transforms.apply`` builds one-row pandas
frames, which costs milliseconds for what is microseconds of work. ``FastPath`` does the same
thing value by value: it checks each field against the input schema with the rules
``schema.check`` applies to typed (JSON) input, conforms it to the raw type training had,
then runs the transforms document's steps on small numpy arrays, op by op as
``transforms.apply`` does, and hands LightGBM a float64 matrix in the model's column order.
It finds the same problems (same reasons, same values, same order) and computes the same
feature values, hence the same predictions; ``tests/test_serve_fastpath.py`` compares the
two paths over many records.

It covers what the featurize stage writes for numeric and categorical inputs: ``rename``,
``to_numeric``, ``log1p``, ``clip``, ``bin``, ``impute``, ``categorical``, ``onehot``.
``FastPath.compile`` returns None for a bundle that needs anything else (datetime inputs,
``date_parts``, ``derive``, ``custom`` steps, another transforms version, ...), and
``FastPath.conform`` returns None for a value it does not cover (anything but what
``json.loads`` makes, or text that is not valid UTF-8): the caller then takes the pandas
path, so behaviour never depends on which path ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipespec.bundle.schema import (
    ABSENT,
    CATEGORICAL,
    NOT_FINITE,
    NULL,
    NUMERIC,
    OUT_OF_RANGE,
    UNKNOWN_CATEGORY,
    WRONG_TYPE,
    Column,
    InputSchema,
    NonFinite,
    Problem,
    _convert,
    _parse_floats,
)
from pipespec.bundle.transforms import FORMAT_VERSION

if TYPE_CHECKING:
    import numpy as np

# How a conformed column is held: float64 array (NaN: missing), or a list of str / int /
# bool values (None: missing). These mirror the dtypes ``schema.check`` gives the pandas path:
# float64, text, Int64 and object booleans.
FLOAT, TEXT, INT, BOOL = "float", "text", "int", "bool"
_JSON_SCALARS = (type(None), bool, int, float, str, NonFinite)
_JSON_TYPES = frozenset((*_JSON_SCALARS, list, dict))
_MISSING = object()  # a field absent from a record


class _Unsupported(Exception):
    """The bundle needs something only the pandas path does."""


class _Fallback(Exception):
    """A request holds a value only the pandas path handles the same way."""


@dataclass(frozen=True)
class _Input:
    """One raw input column, and how to check and conform its values."""

    column: Column
    kind: str  # FLOAT, TEXT, INT or BOOL: what the conformed values are
    expected: str
    categories: frozenset[str] | None
    low: float | None  # allowed range (numeric), both set or both None
    high: float | None


@dataclass(frozen=True)
class FastPath:
    """A bundle's input schema and transforms, compiled for row-wise serving."""

    inputs: tuple[_Input, ...]
    steps: tuple[tuple[_Op, dict[str, Any], Any], ...]  # (op, step, what op needs prepared)
    features: tuple[str, ...]  # the model's input columns, in its order

    @classmethod
    def compile(
        cls, schema: InputSchema, transforms: dict[str, Any], feature_names: list[str]
    ) -> FastPath | None:
        """The fast path for this bundle, or None when it needs the pandas path."""
        try:
            return cls._compile(schema, transforms, feature_names)
        except _Unsupported:
            return None

    @classmethod
    def _compile(
        cls, schema: InputSchema, transforms: dict[str, Any], feature_names: list[str]
    ) -> FastPath:
        if transforms.get("version") != FORMAT_VERSION:
            raise _Unsupported("transforms version")
        inputs = [_input(col) for col in schema.columns]
        if not inputs:
            raise _Unsupported("no inputs")
        names = [str(c.get("name")) for c in transforms.get("inputs") or []]
        if names != schema.names or len(set(names)) != len(names):
            raise _Unsupported("inputs")
        label = transforms.get("target") or {}
        if label.get("name") in names:  # apply() would encode it as a label too
            raise _Unsupported("target among the inputs")
        steps = [dict(step) for step in transforms.get("steps") or []]
        # a dry run on the kinds: every step must be one this module runs, on kinds it takes
        kinds: dict[str, str] = {i.column.name: i.kind for i in inputs}
        for step in steps:
            _step_kinds(kinds, step)
        listed = [str(f.get("name")) for f in transforms.get("features") or []]
        if any(name not in kinds for name in listed):
            raise _Unsupported("a feature the steps do not make")
        if any(name not in listed or kinds[name] != FLOAT for name in feature_names):
            raise _Unsupported("a model column that is not a float feature")
        prepared = tuple((_OPS[s["op"]], s, _prepare(s)) for s in steps)
        return cls(tuple(inputs), prepared, tuple(feature_names))

    # --- checking ----------------------------------------------------------------------

    def conform(self, records: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Problem]] | None:
        """Conformed columns of ``records`` and every problem, in record order then schema
        order (as the pandas path reports them); None when a value needs the pandas path."""
        problems: list[tuple[int, int, Problem]] = []
        columns: dict[str, Any] = {}
        try:
            for k, spec in enumerate(self.inputs):
                name = spec.column.name
                raw = [record.get(name, _MISSING) for record in records]
                if spec.column.type == NUMERIC:
                    columns[name] = _numbers(spec, raw, k, problems)
                else:
                    columns[name] = _categories(spec, raw, k, problems)
        except _Fallback:
            return None
        if len(self.inputs) > 1 and problems:
            problems.sort(key=lambda p: (p[0], p[1]))
        return columns, [p for _, _, p in problems]

    # --- features ----------------------------------------------------------------------

    def matrix(self, columns: dict[str, Any]) -> np.ndarray:
        """The model's input matrix (float64, rows x features) for conformed columns."""
        import numpy as np

        work: dict[str, tuple[str, Any]] = {
            spec.column.name: (spec.kind, columns[spec.column.name]) for spec in self.inputs
        }
        n = len(columns[self.inputs[0].column.name])
        for op, step, prepared in self.steps:
            op(work, step, prepared)
        out = np.empty((n, len(self.features)), dtype="float64")
        for j, name in enumerate(self.features):
            out[:, j] = work[name][1]
        return out


def _input(col: Column) -> _Input:
    if col.type == NUMERIC:
        kind = FLOAT
    elif col.type == CATEGORICAL:
        kind = {"str": TEXT, "datetime": TEXT, "int": INT, "float": FLOAT, "bool": BOOL}[col.dtype]
    else:
        raise _Unsupported("datetime input")
    low = high = None
    if col.type == NUMERIC and col.low is not None and col.high is not None:
        low, high = _bound(col.low), _bound(col.high)
    cats = None if col.categories is None else frozenset(col.categories)
    return _Input(col, kind, col.expected(), cats, low, high)


def _bound(value: Any) -> float:
    """A range bound as numpy compares it with float64 values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unsupported("range bound")
    try:
        return float(value)
    except OverflowError:
        raise _Unsupported("range bound") from None


def _text_ok(value: str) -> bool:
    """Text that pandas and Arrow can hold (a lone surrogate cannot be encoded)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _numbers(spec: _Input, raw: list[Any], k: int, problems: list[Any]) -> np.ndarray:
    """``schema._numeric`` with strict types, value by value."""
    import numpy as np

    col = spec.column
    text_numbers = col.dtype == "str"  # numbers held as text in training: text is parsed
    bool_numbers = col.dtype == "bool"
    n = len(raw)
    values = [math.nan] * n
    null = [False] * n
    wrong = [False] * n
    texts: list[int] = []
    for i, v in enumerate(raw):
        t = type(v)
        if t is float:
            if v == v:
                values[i] = v
            else:
                null[i] = True
        elif t is int:
            try:
                values[i] = float(v)
            except OverflowError:  # an integer beyond float range
                values[i] = math.inf if v > 0 else -math.inf
        elif v is None or v is _MISSING:
            null[i] = True
        elif t is NonFinite:
            values[i] = float(v)
        elif t is bool:
            if bool_numbers:
                values[i] = float(v)
            else:
                wrong[i] = True
        elif t is str:
            if not _text_ok(v):
                raise _Fallback
            if text_numbers:
                texts.append(i)
            else:
                wrong[i] = True
        elif t in _JSON_TYPES:
            wrong[i] = True
        else:
            raise _Fallback
    if texts:  # Arrow parses text as the CSV reader did in training
        parsed, bad, blank = _parse_floats(
            np.asarray([raw[i] for i in texts], dtype=object), np.zeros(len(texts), dtype=bool)
        )
        for j, i in enumerate(texts):
            values[i], wrong[i], null[i] = float(parsed[j]), bool(bad[j]), bool(blank[j])
    nullable, low, high = col.nullable, spec.low, spec.high
    for i, v in enumerate(raw):
        reason = None
        value = values[i]
        if v is _MISSING:
            reason = ABSENT
            value = math.nan
        elif null[i]:
            value = math.nan
            if not nullable:
                reason = NULL
        elif wrong[i]:
            reason = WRONG_TYPE
            value = math.nan
        elif not math.isfinite(value):
            reason = NOT_FINITE
            value = math.nan
        elif low is not None and high is not None and (value < low or value > high):
            reason = OUT_OF_RANGE
        values[i] = value
        if reason is not None:
            problems.append((i, k, _problem(spec, i, v, reason)))
    return np.asarray(values, dtype="float64")


def _categories(spec: _Input, raw: list[Any], k: int, problems: list[Any]) -> Any:
    """``schema._categorical`` with strict types, value by value: the conformed values."""
    import numpy as np

    col = spec.column
    textual = col.dtype in ("str", "datetime")
    allowed, nullable = spec.categories, col.nullable
    values: list[Any] = []
    for i, v in enumerate(raw):
        t = type(v)
        if (t not in _JSON_TYPES and v is not _MISSING) or (t is str and not _text_ok(v)):
            raise _Fallback
        reason = None
        value: Any = None
        key: str | None = None
        if v is _MISSING:
            reason = ABSENT
        elif v is None or (t is float and v != v):
            if not nullable:
                reason = NULL
        elif textual:
            if t is str:
                value, key = v, v
            else:
                reason = WRONG_TYPE
        else:
            value = _convert(col.dtype, v, strict=True)
            if value is None:
                reason = WRONG_TYPE
            elif col.dtype == "int":
                key = str(value)
            elif col.dtype == "float":
                value = float(value)
                key = str(value)
            else:
                key = "True" if value else "False"
        if reason is None and value is not None and allowed is not None and key not in allowed:
            reason = UNKNOWN_CATEGORY
        if reason is not None:
            problems.append((i, k, _problem(spec, i, v, reason)))
            if reason != UNKNOWN_CATEGORY:
                value = None
        values.append(value)
    if spec.kind == FLOAT:
        return np.asarray([math.nan if x is None else x for x in values], dtype="float64")
    return values


def _problem(spec: _Input, row: int, value: Any, reason: str) -> Problem:
    if reason == ABSENT:
        return Problem(row, spec.column.name, ABSENT, expected=spec.expected)
    return Problem(row, spec.column.name, reason, value=value, expected=spec.expected)


# --- the transforms, on small arrays -----------------------------------------------------
# Each op takes ``work`` (name -> (kind, values)) and a step, like ``transforms.OPS``; the
# dry run ``_step_kinds`` says at compile time whether a step is covered.


def _step_kinds(kinds: dict[str, str], step: dict[str, Any]) -> None:
    """Apply ``step`` to the column kinds, or raise ``_Unsupported``."""
    op = step.get("op")
    if op == "rename":
        mapping = step.get("map")
        if not isinstance(mapping, dict):
            raise _Unsupported("rename")
        for old, new in mapping.items():
            if old not in kinds:
                raise _Unsupported("rename of an unknown column")
            kinds[new] = kinds.pop(old)
        return
    col = step.get("column")
    if op not in _OPS or col not in kinds:
        raise _Unsupported(f"op {op}")
    kind = kinds[col]
    if op in ("to_numeric", "log1p"):
        if kind != FLOAT:
            raise _Unsupported(op)
    elif op == "clip":
        if kind != FLOAT:
            raise _Unsupported(op)
        for key in ("lower", "upper"):
            bound = step.get(key)
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float) or bound != bound
            ):
                raise _Unsupported("clip bound")
            if bound is not None:
                _bound(bound)
    elif op == "bin":
        edges = step.get("edges")
        if kind != FLOAT or not isinstance(edges, list):
            raise _Unsupported(op)
        if any(isinstance(e, bool) or not isinstance(e, int | float) for e in edges):
            raise _Unsupported("bin edges")
    elif op == "impute":
        value = step.get("value")
        ok = {
            FLOAT: isinstance(value, int | float)
            and not isinstance(value, bool)
            and (isinstance(value, float) or abs(value) <= 2**53),
            TEXT: isinstance(value, str),
            INT: isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63,
            BOOL: isinstance(value, bool),
        }[kind]
        if not ok:
            raise _Unsupported("impute value")
        if step.get("indicator"):
            kinds[f"{col}_missing"] = FLOAT
    elif op in ("categorical", "onehot"):
        cats = step.get("categories")
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise _Unsupported("categories")
        if op == "categorical":
            if len(set(cats)) != len(cats):
                raise _Unsupported("duplicate categories")
            kinds[col] = FLOAT
        else:
            del kinds[col]
            for c in cats:
                kinds[f"{col}={c}"] = FLOAT
    else:
        raise _Unsupported(f"op {op}")


def _text(kind: str, values: Any) -> list[str | None]:
    """``transforms._as_text``: category keys, 1.0 and 1 alike, None where missing."""
    import numpy as np

    if kind == TEXT:
        return list(values)
    if kind == INT:
        return [None if v is None else str(v) for v in values]
    if kind == BOOL:
        return [None if v is None else ("True" if v else "False") for v in values]
    whole = np.isfinite(values) & (values == np.round(values))
    with np.errstate(invalid="ignore"):  # beyond int64: the same value as the pandas path's
        ints = np.where(whole, values, 0).astype(np.int64).astype("str")
    return [
        None if v != v else (str(ints[i]) if whole[i] else str(v))
        for i, v in enumerate(values.tolist())
    ]


def _op_rename(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    for old, new in step["map"].items():
        work[new] = work.pop(old)


def _op_to_numeric(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    pass  # a numeric input is float64 already: astype("float64") keeps it


def _op_log1p(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    import numpy as np

    col = step["column"]
    values = work[col][1]
    work[col] = (FLOAT, np.log1p(np.where(values > -1, values, np.nan)))


def _op_clip(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    """``Series.clip`` with scalar bounds: NaN stays, bounds swapped if reversed."""
    import numpy as np

    col = step["column"]
    values = work[col][1]
    lower, upper = step.get("lower"), step.get("upper")
    if lower is not None and upper is not None:
        lower, upper = min(lower, upper), max(lower, upper)
    missing = np.isnan(values)
    result = values
    if lower is not None:
        result = np.where(missing | (values >= lower), result, float(lower))
    if upper is not None:
        result = np.where(missing | (values <= upper), result, float(upper))
    work[col] = (FLOAT, result)


def _op_bin(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    import numpy as np

    col = step["column"]
    values = work[col][1]
    codes = np.searchsorted(np.asarray(step["edges"]), values, side="right")
    work[col] = (FLOAT, np.where(np.isnan(values), values, codes.astype("float64")))


def _op_impute(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    import numpy as np

    col = step["column"]
    kind, values = work[col]
    fill = step["value"]
    if kind == FLOAT:
        missing = np.isnan(values)
        filled: Any = np.where(missing, float(fill), values)
    else:
        missing = np.asarray([v is None for v in values], dtype=bool)
        filled = [fill if v is None else v for v in values]
    if step.get("indicator"):
        work[f"{col}_missing"] = (FLOAT, missing.astype("float64"))
    work[col] = (kind, filled)


def _op_categorical(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    """Codes 0..K-1 in the fitted order; unseen values -> K with an 'other' bucket, else NaN."""
    import numpy as np

    col = step["column"]
    cats = step["categories"]
    index = prepared
    unseen = float(len(cats)) if step.get("other") else math.nan
    text = _text(*work[col])
    codes = [math.nan if t is None else index.get(t, unseen) for t in text]
    work[col] = (FLOAT, np.asarray(codes, dtype="float64"))


def _op_onehot(work: dict[str, Any], step: dict[str, Any], prepared: Any) -> None:
    import numpy as np

    col = step["column"]
    text = _text(*work.pop(col))
    for category in step["categories"]:
        hits = [1.0 if t == category else 0.0 for t in text]
        work[f"{col}={category}"] = (FLOAT, np.asarray(hits, dtype="float64"))


def _prepare(step: dict[str, Any]) -> Any:
    """What an op computes once per bundle: the category index of a categorical step."""
    if step["op"] == "categorical":
        return {c: float(i) for i, c in enumerate(step["categories"])}
    return None


_Op = Callable[[dict[str, Any], dict[str, Any], Any], None]
_OPS: dict[str, _Op] = {
    "rename": _op_rename,
    "to_numeric": _op_to_numeric,
    "log1p": _op_log1p,
    "clip": _op_clip,
    "bin": _op_bin,
    "impute": _op_impute,
    "categorical": _op_categorical,
    "onehot": _op_onehot,
}
