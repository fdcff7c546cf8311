"""The one interpreter of fitted feature transforms: the featurize stage, evaluation, batch
prediction and serving all compute features with it. Plain JSON in, numpy arrays out; no
pickle, and no second implementation kept in step.

A transforms document (written by the featurize stage as ``transforms.json``) lists

- ``inputs``: the raw columns the model needs, with their inferred type
  (``numeric``, ``categorical``, ``datetime``);
- ``steps``: fitted operations, applied in order (``run`` below is their interpreter);
- ``features``: the model's input columns, in order, each ``numeric`` or ``categorical``
  (categoricals carry their category list: code = position);
- ``target``: the label's name, task and class list (classification).

The interpreter works on ``work``, a mapping of column names to arrays in one of four
representations: float64 (numbers, integers, and integer or float categories; NaN where
missing), object (text or booleans; None where missing), datetime64 (NaT where missing), or
an Arrow string array (text read from a file: pandas' own text columns are Arrow, and a
million rows of them never become Python objects).
``as_array`` puts a training column in that form; the input schema's ``check`` puts serving
input in the same form, so the ops see the same values whichever path they came from. Every
op is vectorised: one record costs microseconds, a million rows a few numpy passes.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipespec.core.documents import (
    BinStep,
    CategoricalStep,
    ClipStep,
    CustomStep,
    DatePartsStep,
    DeriveStep,
    ImputeStep,
    Log1pStep,
    OnehotStep,
    RenameStep,
    Step,
    TargetSpec,
    ToNumericStep,
    Transforms,
    from_json,
    plain,
)
from pipespec.core.errors import DataError, DocumentError
from pipespec.core.expression import evaluate

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT_VERSION = 2
Custom = Mapping[str, Any]  # a custom step's fn -> the class its caller admitted
DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "minute")
SMALL = 64  # up to this many rows, lookups go value by value (cheaper than a hash table)

__all__ = ["DATE_PARTS", "FORMAT_VERSION", "OPS", "apply", "as_array", "plain", "run"]


# --- the representation ------------------------------------------------------------------


def as_array(values: Any) -> Any:
    """A column (pandas Series, Arrow-backed or not, or a sequence) in the interpreter's
    representation: float64 for numbers, datetime64 for dates, Arrow for pandas' text
    columns, object for other text and booleans."""
    import numpy as np
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype=object, na_value=None)
    if pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            series = series.dt.tz_localize(None)
        return series.to_numpy(dtype="datetime64[ns]")
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        arrow = pa.array(series.array).cast(pa.string())  # zero-copy view of its chunks
        return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow
    out = series.to_numpy(dtype=object, na_value=None)
    if dtype is np.dtype(object):  # a mix may hold NaN or pd.NA: missing is None here
        missing = pd.isna(out)
        if missing.any():
            out = out.copy()
            out[missing] = None
    return out


def is_arrow(values: Any) -> bool:
    """An Arrow string array (text read from a file)."""
    import numpy as np

    return not isinstance(values, np.ndarray) and type(values).__module__.startswith("pyarrow")


def to_objects(values: Any) -> np.ndarray:
    """A column as a numpy array; Arrow text becomes an object array (None where missing)."""
    import numpy as np

    if is_arrow(values):
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    return values


def take(values: Any, rows: np.ndarray) -> Any:
    """The entries ``rows`` of a column, in its representation."""
    if is_arrow(values):
        return values.take(rows)
    return values[rows]


def text_keys(values: Any) -> Any:
    """Category keys as text, None where missing: 1.0 and 1 are the same category ('1'),
    booleans are 'True'/'False', text is itself (Arrow text stays Arrow). Value by value, so
    a key never depends on the other rows."""
    import numpy as np

    if is_arrow(values):
        return values
    if values.dtype == object:
        n = len(values)
        if n <= SMALL:
            return np.array(
                [None if v is None else (v if type(v) is str else str(v)) for v in values],
                dtype=object,
            )
        import pandas as pd

        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            return values  # text (and None) only: the keys as they are
        keys = values.copy()
        other = ~pd.isna(values)
        other[other] = [type(v) is not str for v in values[other]]
        if other.any():
            keys[other] = [str(v) for v in values[other]]
        return keys
    if values.dtype.kind == "M":
        import pandas as pd

        text = pd.Series(values).astype("str").to_numpy(dtype=object)
        text[np.isnat(values)] = None
        return text
    floats = np.asarray(values, dtype="float64")
    out = np.empty(len(floats), dtype=object)
    finite = np.isfinite(floats)
    whole = finite & (floats == np.round(floats)) & (np.abs(floats) < 2**63)
    if whole.any():
        out[whole] = floats[whole].astype(np.int64).astype(str)
    rest = ~whole & ~np.isnan(floats)
    if rest.any():
        out[rest] = [repr(v) if math.isfinite(v) else str(v) for v in floats[rest].tolist()]
    out[np.isnan(floats)] = None
    return out


def parse_floats(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text (object array of str) as float64, parsed by Arrow (correctly rounded, the way the
    CSV reader parses). Returns the values, the unreadable entries and the blank ones (blank
    text is missing, as training read it)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(text)
    values = np.full(n, np.nan)
    wrong = np.zeros(n, dtype=bool)
    if n == 0:
        return values, wrong, np.zeros(0, dtype=bool)
    arrow = text if is_arrow(text) else pa.array(text, type=pa.string())
    stripped = pc.utf8_trim_whitespace(arrow)
    blank = np.asarray(pc.equal(stripped, "").to_numpy(zero_copy_only=False), dtype=bool)
    ok = ~blank
    try:
        values[ok] = pc.cast(pc.filter(stripped, pa.array(ok)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
        return values, wrong, blank
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    cache: dict[str, float | None] = {}
    for i in np.flatnonzero(ok):
        v = stripped[int(i)].as_py()
        if v is None:  # missing: stays NaN
            continue
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


def parse_dates(values: np.ndarray, fmt: str | None) -> np.ndarray:
    """Dates as datetime64[ns] (NaT where missing or unreadable), parsed with ``fmt``."""
    import warnings

    import numpy as np
    import pandas as pd

    if not is_arrow(values) and values.dtype.kind == "M":
        return values.astype("datetime64[ns]")
    values = to_objects(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a format pandas cannot infer
        parsed = pd.to_datetime(pd.Series(values, dtype=object), format=fmt, errors="coerce")
    if getattr(parsed.dtype, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return np.asarray(parsed.to_numpy(dtype="datetime64[ns]"))


# --- applying a document -----------------------------------------------------------------


def load(data: Any, where: str = "transforms.json") -> Transforms:
    """A transforms document from parsed JSON: the version checked, every field typed."""
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise DataError(
            f"{where}: transforms format version {version} is not supported "
            f"(this pipespec reads version {FORMAT_VERSION}): re-run the featurize stage"
        )
    try:
        return from_json(Transforms, data, where)
    except DocumentError as exc:
        raise DataError(f"{where} is not a transforms document: {exc}") from None


def run(
    work: dict[str, np.ndarray], steps: Sequence[Step], custom: Custom | None = None
) -> dict[str, np.ndarray]:
    """Apply ``steps`` in order to ``work`` (in place; also returned). ``custom`` maps a
    custom step's ``fn`` to the class its caller admitted."""
    admitted = custom or {}
    for step in steps:
        OPS[type(step)](work, step, admitted)
    return work


def matrix(
    transforms: Transforms,
    work: dict[str, np.ndarray],
    names: list[str],
    custom: Custom | None = None,
) -> Any:
    """The model's input matrix (float64, rows x features in ``names`` order) for conformed
    input columns ``work``: what featurize wrote for the same rows."""
    import numpy as np

    run(work, transforms.steps, custom)
    n = len(next(iter(work.values()))) if work else 0
    out = np.empty((n, len(names)), dtype="float64", order="F")
    for j, name in enumerate(names):
        out[:, j] = work[name]
    return out


def apply(
    transforms: Transforms | Mapping[str, Any],
    frame: pd.DataFrame,
    custom: Custom | None = None,
) -> pd.DataFrame:
    """The model's feature table for raw training rows ``frame`` (and the encoded target if
    the frame has it): the featurize stage's output. ``transforms`` may be the parsed JSON;
    ``custom``: the classes of its custom steps (see ``run``)."""
    import pandas as pd

    if not isinstance(transforms, Transforms):
        transforms = load(transforms)
    missing = [c.name for c in transforms.inputs if c.name not in frame.columns]
    if missing:
        raise DataError(f"column(s) missing from the input: {', '.join(missing)}")
    work = {c.name: as_array(frame[c.name]) for c in transforms.inputs}
    run(work, transforms.steps, custom)
    out = pd.DataFrame({f.name: work[f.name] for f in transforms.features})
    label = transforms.target
    if label.name in frame.columns:
        out[label.name] = encode_target(label, frame[label.name])
    return out


def model_columns(features: list[str], booster_names: list[str]) -> list[str]:
    """The feature table's columns in the model's input order.

    LightGBM renames some feature names when it trains (spaces become underscores, as in
    one-hot columns like ``payment=credit card``), so the model's names cannot select the
    columns; ``features`` (the transforms' order, the order the model was trained in) can.
    """
    if len(features) != len(booster_names) or any(
        f.replace(" ", "_") != b.replace(" ", "_")
        for f, b in zip(features, booster_names, strict=False)
    ):
        raise DataError(
            f"the model's {len(booster_names)} input features do not match the transforms' "
            f"{len(features)} features: the model and the transforms come from different runs"
        )
    return list(features)


def encode_target(label: TargetSpec, series: pd.Series) -> Any:
    """Labels as the model sees them: class codes 0..K-1, or floats for regression."""
    import numpy as np
    import pandas as pd

    mapping = label.map or {}
    if mapping:
        series = series.map(lambda v: mapping.get(str(v), v) if v is not None else v)
    if label.classes is None:
        return pd.to_numeric(series, errors="raise").astype("float64").to_numpy()
    keys = [str(c) for c in label.classes]
    codes = pd.Index(keys).get_indexer(text_keys(as_array(series)))
    if (codes < 0).any():
        bad = sorted({str(v) for v, c in zip(series, codes, strict=True) if c < 0})
        raise DataError(
            f"target '{label.name}' has label(s) unseen in training: {', '.join(bad[:5])}",
            hint="Map them with features.target_map, e.g. {'>50K.': '>50K'}.",
        )
    return codes.astype(np.int64)


# --- the operations ----------------------------------------------------------------------


def _floats(values: np.ndarray) -> np.ndarray:
    """A column as float64: numbers as they are, booleans 0/1, text parsed, dates NaN."""
    import numpy as np

    if is_arrow(values):
        parsed, _, _ = parse_floats(values)
        return parsed
    if values.dtype == object:
        n = len(values)
        out = np.full(n, np.nan)
        text = np.fromiter((type(v) is str for v in values), bool, n)
        other = ~text & np.fromiter((v is not None for v in values), bool, n)
        if text.any():
            parsed, _, _ = parse_floats(values[text])
            out[text] = parsed
        if other.any():
            out[other] = [float(v) for v in values[other]]
        return out
    if values.dtype.kind == "M":
        return np.full(len(values), np.nan)
    return np.asarray(values, dtype="float64")


def _rename(work: dict[str, Any], step: RenameStep, custom: Custom) -> None:
    for old, new in step.map.items():
        work[new] = work.pop(old)


def _to_numeric(work: dict[str, Any], step: ToNumericStep, custom: Custom) -> None:
    work[step.column] = _floats(work[step.column])


def _date_parts(work: dict[str, Any], step: DatePartsStep, custom: Custom) -> None:
    import numpy as np
    import pandas as pd

    col = step.column
    dates = pd.Series(parse_dates(work[col], step.format))
    for part in step.parts:
        attr = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(part, part)
        work[f"{col}_{part}"] = np.asarray(getattr(dates.dt, attr), dtype="float64")


def _derive(work: dict[str, Any], step: DeriveStep, custom: Custom) -> None:
    """The expression's grammar and evaluator: ``pipespec.core.expression`` (numpy only)."""
    import numpy as np

    columns = {c: _floats(work[c]) for c in step.uses}
    rows = len(next(iter(work.values()))) if work else 0
    values = evaluate(step.expression, columns, rows)
    work[step.column] = np.where(np.isfinite(values), values, np.nan)


def _log1p(work: dict[str, Any], step: Log1pStep, custom: Custom) -> None:
    import numpy as np

    col = step.column
    values = _floats(work[col])
    with np.errstate(invalid="ignore"):
        work[col] = np.log1p(np.where(values > -1, values, np.nan))


def _clip(work: dict[str, Any], step: ClipStep, custom: Custom) -> None:
    """Scalar bounds (swapped if reversed); NaN stays NaN."""
    import numpy as np

    col = step.column
    values = _floats(work[col])
    lower, upper = step.lower, step.upper
    if lower is not None and upper is not None:
        lower, upper = min(lower, upper), max(lower, upper)
    missing = np.isnan(values)
    result = values
    if lower is not None:
        result = np.where(missing | (values >= lower), result, float(lower))
    if upper is not None:
        result = np.where(missing | (values <= upper), result, float(upper))
    work[col] = result


def _bin(work: dict[str, Any], step: BinStep, custom: Custom) -> None:
    import numpy as np

    col = step.column
    values = _floats(work[col])
    codes = np.searchsorted(np.asarray(step.edges, dtype="float64"), values, side="right")
    work[col] = np.where(np.isnan(values), values, codes.astype("float64"))


def _impute(work: dict[str, Any], step: ImputeStep, custom: Custom) -> None:
    import numpy as np

    col = step.column
    values = work[col]
    fill = step.value
    if is_arrow(values):
        values = to_objects(values)
    if values.dtype.kind == "f" and isinstance(fill, str):  # a text fill in numeric categories
        values = text_keys(values)
    if values.dtype == object:
        missing = np.fromiter((v is None for v in values), bool, len(values))
        filled = values.copy()
        filled[missing] = fill
    elif values.dtype.kind == "M":
        missing = np.isnat(values)
        filled = values
    else:
        missing = np.isnan(values)
        # no copy when nothing is missing: a fit imputes every column of a wide table
        filled = (
            values if fill is None or not missing.any() else np.where(missing, float(fill), values)
        )
    if step.indicator:
        work[f"{col}_missing"] = missing.astype("float64")
    work[col] = filled


def _categorical(work: dict[str, Any], step: CategoricalStep, custom: Custom) -> None:
    """Codes 0..K-1 in the fitted order; unseen or rare values -> the 'other' bucket (code K)
    when the step has one, else missing."""
    import numpy as np

    col = step.column
    keys = text_keys(work[col])
    cats = step.categories
    unseen = float(len(cats)) if step.other else math.nan
    if len(keys) <= SMALL:
        keys = to_objects(keys)
        index = _index(cats)
        codes = np.array(
            [math.nan if k is None else index.get(k, unseen) for k in keys], dtype="float64"
        )
    else:
        found = index_in(keys, cats)
        present = present_keys(keys)
        codes = np.where(found >= 0, found, np.where(present, unseen, np.nan))
    work[col] = codes


def index_in(keys: np.ndarray, categories: list[str] | tuple[str, ...]) -> np.ndarray:
    """Position of each text key in ``categories`` (-1: not there or missing), by Arrow's
    hash table: for many rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = keys if is_arrow(keys) else pa.array(keys, type=pa.string())
    found = pc.index_in(arrow, value_set=pa.array(list(categories), type=pa.string()))
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype="float64")


def present_keys(keys: Any) -> np.ndarray:
    """Which keys are not missing (None)."""
    import numpy as np

    if is_arrow(keys):
        return np.asarray(keys.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(keys != None, dtype=bool)  # noqa: E711 (elementwise on an array)


_INDEXES: dict[int, tuple[Any, dict[str, float]]] = {}


def _index(categories: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Category -> code, built once per category list (a step's list lives as long as its
    transforms document: cached by identity, checked)."""
    found = _INDEXES.get(id(categories))
    if found is None or found[0] is not categories:
        if len(_INDEXES) > 512:
            _INDEXES.clear()
        found = _INDEXES[id(categories)] = (
            categories,
            {c: float(i) for i, c in enumerate(categories)},
        )
    return found[1]


def _onehot(work: dict[str, Any], step: OnehotStep, custom: Custom) -> None:
    col = step.column
    keys = to_objects(text_keys(work.pop(col)))
    for category in step.categories:
        work[f"{col}={category}"] = (keys == category).astype("float64")


def _custom(work: dict[str, Any], step: CustomStep, custom: Custom) -> None:
    """A user's transform: the class its caller resolved and admitted (a bundle admits it
    when it is loaded; the featurize stage from the config). The interpreter imports nothing."""
    import pandas as pd

    cls = custom.get(step.fn)
    if cls is None:
        raise DataError(
            f"custom transform '{step.fn}' was not admitted: nothing imports a module a "
            "transforms document names",
            hint=f"Load the bundle with --allow-custom {step.module} (or production.allow_custom).",
        )
    frame = pd.DataFrame({k: to_objects(v) for k, v in work.items()})
    result = cls().transform(frame, step.state)
    work.clear()
    work.update({c: as_array(result[c]) for c in result.columns})


def load_custom(path: str) -> Any:
    """A user's transform class from ``package.module:Class``, named by the project's own
    configuration (``features.custom``): only the featurize stage and a bundle whose module
    was admitted (``pipespec.bundle.bundle``) call it."""
    module_name, _, name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"cannot import custom transform '{path}': {exc}") from None
    if not (hasattr(cls, "fit") and hasattr(cls, "transform")):
        raise DataError(f"custom transform '{path}' needs fit(frame) and transform(frame, state)")
    return cls


OPS: dict[type, Callable[[dict[str, Any], Any, Custom], None]] = {
    RenameStep: _rename,
    ToNumericStep: _to_numeric,
    DatePartsStep: _date_parts,
    DeriveStep: _derive,
    Log1pStep: _log1p,
    ClipStep: _clip,
    BinStep: _bin,
    ImputeStep: _impute,
    CategoricalStep: _categorical,
    OnehotStep: _onehot,
    CustomStep: _custom,
}
