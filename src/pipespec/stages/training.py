"""What every trainer of the ``train`` stage shares (local, Dask, Spark): the LightGBM
parameters of a model config, class weights, feature names for monotone constraints and the
importance plot. Kept apart from ``stages.train`` so that the distributed trainers import it
without importing the local trainer (which dispatches to them)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path
from pipespec.core.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

OBJECTIVES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
METRICS = {"binary": "binary_logloss", "multiclass": "multi_logloss", "regression": "rmse"}
NAMED = (
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_data_in_leaf",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l1",
    "lambda_l2",
)
# model.* keys that are pipespec's, not LightGBM parameters
OWN_KEYS = {
    "name",
    "objective",
    "num_boost_round",
    "early_stopping_rounds",
    "class_weight",
    "cv_folds",
    "params",
    *NAMED,
}


def lightgbm_params(
    model: Any, *, task: str, seed: int, threads: int, num_class: int | None
) -> dict[str, Any]:
    """The LightGBM parameter dict for a model config (named fields, then ``params``)."""
    extra = (
        model["params"].to_dict() if hasattr(model["params"], "to_dict") else dict(model["params"])
    )
    unknown_top = sorted(set(model) - OWN_KEYS)  # LightGBM names, checked at composition
    params: dict[str, Any] = {
        "objective": model["objective"] or OBJECTIVES[task],
        "metric": METRICS[task],
        **{key: model[key] for key in NAMED},
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }
    if task == "multiclass":
        params["num_class"] = num_class
    params.update({k: model[k] for k in unknown_top})
    params.update(extra)
    return params


MONOTONE = ("monotone_constraints", "monotone_constraint", "mc", "monotonic_cst")


def monotone_by_name(params: dict[str, Any], features: list[str]) -> None:
    """``model.params.monotone_constraints`` may map feature names to -1/0/1 instead of
    listing one value per feature in the table's order: turn the mapping into that list."""
    for key in MONOTONE:
        given = params.get(key)
        if not isinstance(given, dict):
            continue
        unknown = sorted(set(map(str, given)) - set(features))
        if unknown:
            close = difflib.get_close_matches(unknown[0], features, n=1)
            raise ConfigError(
                f"model.params.{key}: no feature '{unknown[0]}'",
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + f"Features: {', '.join(features)}",
            )
        bad = {k: v for k, v in given.items() if v not in (-1, 0, 1)}
        if bad:
            raise ConfigError(f"model.params.{key}: values must be -1, 0 or 1, got {bad}")
        params[key] = [int(given.get(f, 0)) for f in features]


def class_factors(class_weight: Any, classes: list[Any] | None, counts: Any) -> np.ndarray:
    """The weight of each class; ``counts``: training rows per class code."""
    import numpy as np

    classes = classes or []  # a classification task (checked at composition)
    if class_weight == "balanced":
        counts = np.asarray(counts, dtype="float64")
        per_class = counts.sum() / (len(classes) * np.maximum(counts, 1))
    else:  # a mapping
        given = class_weight.to_dict() if hasattr(class_weight, "to_dict") else class_weight
        names = [str(c) for c in classes]
        unknown = [k for k in given if str(k) not in names]
        if unknown:
            raise ConfigError(
                f"model.class_weight names unknown class(es) {unknown}; classes: {names}"
            )
        by_name = {str(k): float(v) for k, v in given.items()}
        per_class = np.array([by_name.get(n, 1.0) for n in names])
    return np.asarray(per_class, dtype="float64")


def write_importance(booster: Any, best: int, path: Any) -> None:
    import pandas as pd

    gain = booster.feature_importance(importance_type="gain", iteration=best)
    table = pd.DataFrame({"feature": booster.feature_name(), "gain": gain.round(6)})
    table = table.sort_values(["gain", "feature"], ascending=[False, True])
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
