"""What every trainer of the ``train`` stage shares (``train_local``, ``train_dask``,
``train_spark``): the job read from the stage's params and the training table's columns, the
LightGBM parameters of a model config (objectives, metrics, monotone constraints by feature
name), class and row weights, the progress callback, and the results every trainer writes
(metrics, the importance plot, the tree-count line).

The trainers import this module and never each other, nor the ``train`` kind that dispatches
to them, so there is no import circle among them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipespec.core import lightgbm_params as lightgbm_names
from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.core.numbers import number
from pipespec.stages.parquet import table_columns

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipespec.core.progress import Bar
    from pipespec.stages.context import StageContext

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


@dataclass
class Job:
    """What a trainer trains: the ``train`` stage's params, read once, and the training
    table's columns (the features are every column but the target and the weight)."""

    task: str
    target: str
    weight_col: str | None
    model: Any  # the model config (a params view)
    seed: int
    classes: list[Any] | None  # a classification task's classes, in code order
    params: dict[str, Any]  # LightGBM's
    features: list[str]
    categorical: list[str]

    @property
    def rounds(self) -> int:
        return int(self.model["num_boost_round"])

    @property
    def stopping(self) -> int | None:
        """``model.early_stopping_rounds`` (None or 0: no early stopping)."""
        stopping = self.model["early_stopping_rounds"]
        return int(stopping) if stopping else None

    @property
    def metric(self) -> str:
        metric: str = self.params["metric"]
        return metric

    @property
    def class_weight(self) -> Any:
        return self.model["class_weight"]

    @property
    def default_loss(self) -> bool:
        """True when the objective and metric are the task's own (the ones the distributed
        trainers can compute a validation curve for)."""
        return (
            self.metric == METRICS[self.task] and self.params["objective"] == OBJECTIVES[self.task]
        )


def job(ctx: StageContext, *, threads: int) -> Job:
    """The job of ``ctx``'s train stage, LightGBM running ``threads`` threads per process."""
    task = ctx.params["dataset"]["task"]
    target = ctx.params["dataset"]["target"]
    weight_col = ctx.params["dataset"]["weight"]
    model = ctx.params["model"]
    path = ctx.input("train")
    names, meta = table_columns(path)
    if target not in names:
        raise DataError(f"target column '{target}' is not in {path}")
    classes = meta.classes
    seed = ctx.params["seed"]
    params = lightgbm_params(
        model, task=task, seed=seed, threads=threads, num_class=len(classes) if classes else None
    )
    features = [c for c in names if c not in (target, weight_col)]
    categorical = [c for c in meta.categorical or [] if c in features]
    monotone_by_name(params, features)
    return Job(task, target, weight_col, model, seed, classes, params, features, categorical)


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


def monotone_by_name(params: dict[str, Any], features: list[str]) -> None:
    """``model.params.monotone_constraints`` (or any of LightGBM's aliases of it) may map
    feature names to -1/0/1 instead of listing one value per feature in the table's order:
    turn the mapping into that list."""
    for key in lightgbm_names.aliases("monotone_constraints"):
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


# --- weights -----------------------------------------------------------------------------


def label_counts(labels: Any, classes: int) -> np.ndarray:
    """Rows per class code among ``labels`` (codes ``0..classes-1``)."""
    import numpy as np

    return np.bincount(np.asarray(labels).astype("int64"), minlength=classes)


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


def row_weights(
    frame: pd.DataFrame, target: str, weight_col: str | None, factors: np.ndarray | None
) -> np.ndarray | None:
    """Each row's weight: its weight column times its class's factor (``class_factors``);
    None when there is neither, so that LightGBM trains unweighted."""
    weights = frame[weight_col].to_numpy(dtype="float64") if weight_col else None
    if factors is None:
        return weights
    row = factors[frame[target].to_numpy()]
    return row if weights is None else weights * row


# --- progress and results ----------------------------------------------------------------


def showing(bar: Bar, metric: str) -> Callable[[Any], None]:
    """A LightGBM callback that moves ``bar`` each round, with the running ``metric``."""

    def callback(env: Any) -> None:
        note = ""
        for data_name, name, value, _ in env.evaluation_result_list or ():
            if name == metric:
                note = f"{data_name} {name} {number(value, 5, notation='f')}"
                break
        bar.update(env.iteration + 1, note=note)

    return callback


def tree_count(rounds: int, per_round: int) -> str:
    """Trees reported one way, as the bundle's card counts them: a multiclass model grows
    one tree per class in each boosting round."""
    if per_round <= 1:
        return f"{rounds} trees ({rounds} boosting rounds)"
    return f"{rounds * per_round} trees ({rounds} boosting rounds x {per_round} classes)"


def write_importance(booster: Any, best: int, path: Any) -> None:
    """The importance plot: each feature's total gain in the first ``best`` iterations."""
    import pandas as pd

    gain = booster.feature_importance(importance_type="gain", iteration=best)
    table = pd.DataFrame({"feature": booster.feature_name(), "gain": gain.round(6)})
    table = table.sort_values(["gain", "feature"], ascending=[False, True])
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")


def finish(ctx: StageContext, job: Job, booster: Any, best: int, summary: dict[str, Any]) -> None:
    """What every trainer writes after its model: the metrics (``summary``), the importance
    plot, and the line that says how many trees were kept and their validation scores."""
    write_json(ctx.output("metrics"), summary)
    write_importance(booster, best, ctx.output("importance"))
    shown = [f"{k}={v}" for k, v in summary.items() if k.endswith(job.metric)]
    console().print(f"  {tree_count(best, booster.num_model_per_iteration())} (of {job.rounds} "
                    "rounds max) " + ", ".join(shown))  # fmt: skip
