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

The steps work on ``work``, a mapping of column names to arrays in the representation of
``pipespec.bundle.columns`` (which the input check conforms serving input to). A prediction
meets this module once: ``matrix`` applies the whole plan to the checked columns and hands
back the model's input matrix; ``apply`` does the same for a training frame. Every op is
vectorised: one record costs microseconds, a million rows a few numpy passes.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipespec.bundle.columns import (
    SMALL,
    Codes,
    as_array,
    category_codes,
    floats,
    index_in,
    is_arrow,
    parse_dates,
    present_keys,
    text_keys,
    to_objects,
)
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
)
from pipespec.core.errors import DataError, DocumentError
from pipespec.core.expression import evaluate

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT_VERSION = 2
Custom = Mapping[str, Any]  # a custom step's fn -> the class its caller admitted
DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "minute")

__all__ = [
    "DATE_PARTS",
    "FORMAT_VERSION",
    "OPS",
    "apply",
    "encode_target",
    "load",
    "load_custom",
    "matrix",
    "model_columns",
    "run",
]


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
    work: dict[str, np.ndarray],
    steps: Sequence[Step],
    custom: Custom | None = None,
    codes: Mapping[str, Codes] | None = None,
) -> dict[str, np.ndarray]:
    """Apply ``steps`` in order to ``work`` (in place; also returned). ``custom`` maps a
    custom step's ``fn`` to the class its caller admitted; ``codes``: the input check's
    category lookups (``Checked.codes``), which a categorical step reuses when its column
    is still the array they were made from."""
    admitted = custom or {}
    for step in steps:
        if codes and type(step) is CategoricalStep:
            _categorical(work, step, admitted, codes.get(step.column))
        else:
            OPS[type(step)](work, step, admitted)
    return work


def matrix(
    transforms: Transforms,
    work: dict[str, np.ndarray],
    names: list[str],
    custom: Custom | None = None,
    codes: Mapping[str, Codes] | None = None,
) -> Any:
    """The model's input matrix (float64, rows x features in ``names`` order) for conformed
    input columns ``work``: what featurize wrote for the same rows."""
    import numpy as np

    run(work, transforms.steps, custom, codes)
    n = len(next(iter(work.values()))) if work else 0
    if 0 < n <= SMALL and names:
        # a few rows: the columns stacked in one call (the same values and layout: a
        # feature per row, transposed); a column at a time costs a numpy call per feature
        return np.array([work[name] for name in names], dtype="float64").T
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


def _rename(work: dict[str, Any], step: RenameStep, custom: Custom) -> None:
    for old, new in step.map.items():
        work[new] = work.pop(old)


def _to_numeric(work: dict[str, Any], step: ToNumericStep, custom: Custom) -> None:
    work[step.column] = floats(work[step.column])


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

    columns = {c: floats(work[c]) for c in step.uses}
    rows = len(next(iter(work.values()))) if work else 0
    values = evaluate(step.expression, columns, rows)
    work[step.column] = np.where(np.isfinite(values), values, np.nan)


def _log1p(work: dict[str, Any], step: Log1pStep, custom: Custom) -> None:
    import numpy as np

    col = step.column
    values = floats(work[col])
    with np.errstate(invalid="ignore"):
        work[col] = np.log1p(np.where(values > -1, values, np.nan))


def _clip(work: dict[str, Any], step: ClipStep, custom: Custom) -> None:
    """Scalar bounds (swapped if reversed); NaN stays NaN."""
    import numpy as np

    col = step.column
    values = floats(work[col])
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
    values = floats(work[col])
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


def _categorical(
    work: dict[str, Any], step: CategoricalStep, custom: Custom, known: Codes | None = None
) -> None:
    """Codes 0..K-1 in the fitted order; unseen or rare values -> the 'other' bucket (code K)
    when the step has one, else missing. ``known``: the input check's lookup of the same
    keys, reused (one hash pass per column, not two)."""
    import numpy as np

    col = step.column
    values = work[col]
    cats = step.categories
    unseen = float(len(cats)) if step.other else math.nan
    if known is not None and known.source is values and len(values) > SMALL:
        recoded = known.recode(cats, unseen)
        if recoded is not None:
            work[col] = recoded
            return
    if len(values) <= SMALL:  # a few rows: value by value, the keys as ``text_keys`` makes them
        index = category_codes(cats)
        if type(values) is not np.ndarray or values.dtype != object:
            values = to_objects(text_keys(values)).tolist()
        codes = np.array(
            [
                index.get(v, unseen) if type(v) is str else
                math.nan if v is None else index.get(str(v), unseen)
                for v in values
            ],
            dtype="float64",
        )  # fmt: skip
    else:
        keys = text_keys(values)
        found = index_in(keys, cats)
        present = present_keys(keys)
        codes = np.where(found >= 0, found, np.where(present, unseen, np.nan))
    work[col] = codes


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
