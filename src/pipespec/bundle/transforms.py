"""Fitted feature transforms: applied identically in the featurize stage, in batch
prediction and in serving. Plain JSON in, plain pandas out; no pickle anywhere.

A transforms document (written by the featurize stage as ``transforms.json``) lists

- ``inputs``: the raw columns the model needs, with their inferred type
  (``numeric``, ``categorical``, ``datetime``);
- ``steps``: fitted operations, applied in order (``apply`` below is their interpreter);
- ``features``: the model's input columns, in order, each ``numeric`` or ``categorical``
  (categoricals carry their category list: code = position);
- ``target``: the label's name, task and class list (classification).

Each step is ``{"op": NAME, ...}``; ``OPS`` maps names to functions. A custom step names a
user's class by import path and carries the JSON state its ``fit`` returned.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipespec.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 2
DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "minute")


def apply(transforms: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """The model's feature table for raw rows ``frame`` (and the mapped target if present)."""
    import pandas as pd

    if transforms.get("version") != FORMAT_VERSION:
        raise DataError(
            f"transforms format version {transforms.get('version')} is not supported "
            f"(this pipespec reads version {FORMAT_VERSION}): re-run the featurize stage"
        )
    missing = [c["name"] for c in transforms["inputs"] if c["name"] not in frame.columns]
    if missing:
        raise DataError(f"column(s) missing from the input: {', '.join(missing)}")
    work = {c["name"]: frame[c["name"]] for c in transforms["inputs"]}
    for step in transforms["steps"]:
        OPS[step["op"]](work, step)
    out = pd.DataFrame(
        {f["name"]: work[f["name"]] for f in transforms["features"]}, index=frame.index
    )
    label = transforms["target"]
    if label["name"] in frame.columns:
        out[label["name"]] = encode_target(label, frame[label["name"]])
    return out.reset_index(drop=True)


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


def encode_target(label: dict[str, Any], series: pd.Series) -> Any:
    """Labels as the model sees them: class codes 0..K-1, or floats for regression."""
    import numpy as np
    import pandas as pd

    mapping = label.get("map") or {}
    if mapping:
        series = series.map(lambda v: mapping.get(str(v), v) if v is not None else v)
    if "classes" not in label:
        return pd.to_numeric(series, errors="raise").astype("float64").to_numpy()
    keys = [str(c) for c in label["classes"]]
    codes = pd.Index(keys).get_indexer(_as_text(series))
    if (codes < 0).any():
        bad = sorted({str(v) for v, c in zip(series, codes, strict=True) if c < 0})
        raise DataError(
            f"target '{label['name']}' has label(s) unseen in training: {', '.join(bad[:5])}",
            hint="Map them with features.target_map, e.g. {'>50K.': '>50K'}.",
        )
    return codes.astype(np.int64)


# --- the operations ---------------------------------------------------------------------


def _as_text(series: pd.Series) -> pd.Series:
    """Text keys for category lookups: 1.0 and 1 are the same category, NaN stays missing."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(series):
        # value by value, so a key never depends on the other rows of the batch
        values = series.to_numpy(dtype="float64")
        whole = np.isfinite(values) & (values == np.round(values))
        text = series.astype("str")
        ints = np.where(whole, values, 0).astype(np.int64).astype("str")
        return text.where(~whole, pd.Series(ints, index=series.index)).where(series.notna(), None)
    return series.astype("str").where(series.notna(), None)


def _rename(work: dict[str, Any], step: dict[str, Any]) -> None:
    for old, new in step["map"].items():
        work[new] = work.pop(old)


def _to_numeric(work: dict[str, Any], step: dict[str, Any]) -> None:
    import pandas as pd

    col = step["column"]
    series = work[col]
    if not pd.api.types.is_numeric_dtype(series):
        series = pd.to_numeric(series.astype("str").str.strip().replace("", None), errors="coerce")
    work[col] = series.astype("float64")


def _date_parts(work: dict[str, Any], step: dict[str, Any]) -> None:
    import pandas as pd

    col = step["column"]
    dates = pd.to_datetime(work[col], format=step.get("format"), errors="coerce")
    for part in step["parts"]:
        attr = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(part, part)
        work[f"{col}_{part}"] = getattr(dates.dt, attr).astype("float64")


def _derive(work: dict[str, Any], step: dict[str, Any]) -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({c: work[c] for c in step["uses"]})
    with np.errstate(divide="ignore", invalid="ignore"):
        values = frame.eval(step["expr"], engine="python").astype("float64")
    work[step["column"]] = values.where(np.isfinite(values))


def _log1p(work: dict[str, Any], step: dict[str, Any]) -> None:
    import numpy as np

    col = step["column"]
    values = work[col].astype("float64")
    work[col] = np.log1p(values.where(values > -1))


def _clip(work: dict[str, Any], step: dict[str, Any]) -> None:
    col = step["column"]
    work[col] = work[col].astype("float64").clip(step.get("lower"), step.get("upper"))


def _bin(work: dict[str, Any], step: dict[str, Any]) -> None:
    import numpy as np

    col = step["column"]
    values = work[col].astype("float64")
    codes = np.searchsorted(np.asarray(step["edges"]), values.to_numpy(), side="right")
    work[col] = values.where(values.isna(), codes.astype("float64"))


def _impute(work: dict[str, Any], step: dict[str, Any]) -> None:
    col = step["column"]
    missing = work[col].isna()
    if step.get("indicator"):
        work[f"{col}_missing"] = missing.astype("float64")
    work[col] = work[col].where(~missing, step["value"])


def _categorical(work: dict[str, Any], step: dict[str, Any]) -> None:
    """Codes 0..K-1 in the fitted order; unseen or rare values -> the 'other' bucket (code K)
    when the step has one, else missing."""
    import numpy as np
    import pandas as pd

    col = step["column"]
    text = _as_text(work[col])
    codes = pd.Index(step["categories"]).get_indexer(text).astype("float64")
    unknown = (codes < 0) & text.notna().to_numpy()
    codes[codes < 0] = np.nan
    if step.get("other"):
        codes[unknown] = len(step["categories"])
    work[col] = pd.Series(codes, index=text.index)


def _onehot(work: dict[str, Any], step: dict[str, Any]) -> None:
    col = step["column"]
    text = _as_text(work.pop(col))
    for category in step["categories"]:
        work[f"{col}={category}"] = (text == category).astype("float64")


def _custom(work: dict[str, Any], step: dict[str, Any]) -> None:
    import pandas as pd

    frame = pd.DataFrame(work)
    result = load_custom(step["fn"])().transform(frame, step["state"])
    work.clear()
    work.update({c: result[c] for c in result.columns})


def load_custom(path: str) -> Any:
    """A user's transform class from ``package.module:Class``."""
    module_name, _, name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"cannot import custom transform '{path}': {exc}") from None
    if not (hasattr(cls, "fit") and hasattr(cls, "transform")):
        raise DataError(f"custom transform '{path}' needs fit(frame) and transform(frame, state)")
    return cls


OPS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "rename": _rename,
    "to_numeric": _to_numeric,
    "date_parts": _date_parts,
    "derive": _derive,
    "log1p": _log1p,
    "clip": _clip,
    "bin": _bin,
    "impute": _impute,
    "categorical": _categorical,
    "onehot": _onehot,
    "custom": _custom,
}


def plain(value: Any) -> Any:
    """A numpy scalar as the plain Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value
