"""Fitted feature transforms: applied identically in the featurize stage, in batch
prediction and in serving. Plain JSON in, plain pandas out; no pickle anywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def apply(transforms: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Apply fitted ``transforms`` to ``frame``: the same code for training and serving."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    for feature in transforms["features"]:
        name = feature["name"]
        if name not in frame.columns:
            raise DataError(f"column '{name}' is missing from the input")
        series = frame[name]
        if feature["type"] == "categorical":
            mapping = {c: float(i) for i, c in enumerate(feature["categories"])}
            text = series.astype("str").where(series.notna(), None)
            out[name] = text.map(mapping).astype("float64").to_numpy()
        else:
            out[name] = pd.to_numeric(series, errors="raise").astype("float64").to_numpy()
    label = transforms["target"]
    target = label["name"]
    if target in frame.columns:
        if "classes" in label:
            codes = {_key(c): i for i, c in enumerate(label["classes"])}
            mapped = [codes.get(_key(v), np.nan) for v in frame[target].tolist()]
            if any(np.isnan(m) for m in mapped):
                bad = sorted(
                    {str(v) for v, m in zip(frame[target], mapped, strict=True) if np.isnan(m)}
                )
                raise DataError(
                    f"target '{target}' has label(s) unseen in training: {', '.join(bad[:5])}"
                )
            out[target] = np.asarray(mapped, dtype="int64")
        else:
            out[target] = frame[target].astype("float64").to_numpy()
    return pd.DataFrame(out)


def plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _key(value: Any) -> str:
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
