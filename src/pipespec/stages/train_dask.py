"""The ``train`` stage on ``compute=dask``: ``lightgbm.dask``, one LightGBM machine per
worker, on the partitions of the featurized tables. The parameters, weights and the model's
text are the local trainer's (``stages.train``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.errors import DataError
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.train import (
    METRICS,
    OBJECTIVES,
    _write_importance,
    class_factors,
    lightgbm_params,
    monotone_by_name,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


NETWORK_LINES = ("[machines: ", "[local_listen_port: ")


class _Quiet:
    """A LightGBM logger that keeps warnings and drops information."""

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        if "will be ignored" not in msg:  # n_jobs: each worker's thread count rules
            console().print(f"  [yellow]lightgbm:[/] {msg}")


_QUIET = _Quiet()


def run(ctx: StageContext) -> None:
    """Train with ``lightgbm.dask`` on the cluster, one LightGBM machine per worker.

    Partitions are placed on the workers in a fixed order, so the same data, params and
    number of workers give the same model. ``lightgbm.dask`` has no early stopping: every
    round is trained, the validation curve is computed on the cluster from the trees, and
    the model is cut at the iteration early stopping would have chosen.
    """
    import time
    import warnings

    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    task = ctx.params["dataset"]["task"]
    target = ctx.params["dataset"]["target"]
    weight_col = ctx.params["dataset"]["weight"]
    model = ctx.params["model"]
    meta = parquet.table_meta(ctx.input("train"))
    classes = meta.classes
    params = lightgbm_params(
        model,
        task=task,
        seed=ctx.params["seed"],
        threads=1,
        num_class=len(classes) if classes else None,
    )
    params.pop("num_threads")  # lightgbm.dask gives each worker its own thread count
    rounds = int(model["num_boost_round"])
    table = parquet.frame(ctx.input("train"))
    if target not in table.columns:
        raise DataError(f"target column '{target}' is not in {ctx.input('train')}")
    features = [c for c in table.columns if c not in (target, weight_col)]
    categorical = [c for c in meta.categorical or [] if c in features]
    monotone_by_name(params, features)
    estimator_class = DaskLGBMRegressor if task == "regression" else DaskLGBMClassifier
    with cluster.connect(ctx, ranked=True) as client:
        clock = time.perf_counter()
        table = cluster.pinned(client, table)
        placed = time.perf_counter() - clock
        labels = table[target]
        weights = None
        if weight_col or model["class_weight"] is not None:
            factors = None
            if model["class_weight"] is not None:
                counts = labels.value_counts().compute()
                factors = class_factors(
                    model["class_weight"],
                    classes,
                    [int(counts.get(i, 0)) for i in range(len(classes or []))],
                )
            weights = table.map_partitions(
                _row_weights, target, weight_col, factors, meta=("weight", "float64")
            )
        console().print(
            f"  lightgbm.dask on {len(cluster.workers(client))} workers, {rounds} rounds "
            f"(training rows placed on the workers in {placed:.1f}s)"
        )
        clock = time.perf_counter()
        estimator = estimator_class(client=client, n_estimators=rounds, **params)
        with warnings.catch_warnings():  # "n_jobs will be ignored": the workers' threads rule
            warnings.filterwarnings("ignore", "Parameter .* will be ignored", UserWarning)
            lgb.register_logger(_QUIET)  # lightgbm.dask's port-finding chatter
            estimator.fit(
                table[features], labels, sample_weight=weights, categorical_feature=categorical
            )
        booster = estimator.booster_
        console().print(f"  trained in {time.perf_counter() - clock:.1f}s")
        clock = time.perf_counter()
        total = booster.current_iteration()
        best, scores = total, {}
        valid = [(n, p) for n, p in ctx.inputs.items() if n != "train"]
        if valid and params["metric"] == METRICS[task] and params["objective"] == OBJECTIVES[task]:
            text = booster.model_to_string()
            for name, path in valid:
                curve = _curve(client, text, path, features, target, weight_col, params["metric"])
                if curve is not None:
                    scores[name] = curve
            stopping = model["early_stopping_rounds"]
            if scores and stopping:
                best = _best_iteration(next(iter(scores.values())), int(stopping))
            console().print(
                f"  validation curve of {', '.join(scores)} in {time.perf_counter() - clock:.1f}s"
            )
        elif valid:
            console().print(
                f"  [yellow]note:[/] no validation curve for metric '{params['metric']}' "
                "under Dask: all rounds kept"
            )
    with atomic_path(ctx.output("model")) as tmp:
        tmp.write_text(_without_network(booster.model_to_string(num_iteration=best)))
    summary: dict[str, Any] = {"train_rows": int(sum(parquet.part_rows(
        parquet.part_files(ctx.input("train"))))), "best_iteration": best}  # fmt: skip
    for name, curve in scores.items():
        summary[f"{name}_{params['metric']}"] = round(float(curve[best - 1]), 6)
    write_json(ctx.output("metrics"), summary)
    _write_importance(booster, best, ctx.output("importance"))
    shown = [f"{k}={v}" for k, v in summary.items() if k.endswith(params["metric"])]
    console().print(f"  {best} trees (of {rounds} max) " + ", ".join(shown))


def _row_weights(
    frame: pd.DataFrame, target: str, weight_col: str | None, factors: np.ndarray | None
) -> pd.Series:
    import numpy as np
    import pandas as pd

    weights = np.ones(len(frame))
    if weight_col:
        weights = frame[weight_col].to_numpy(dtype="float64")
    if factors is not None:
        weights = weights * factors[frame[target].to_numpy()]
    return pd.Series(weights, index=frame.index, name="weight")


def _without_network(model_text: str) -> str:
    """The model text without the cluster's network addresses and ports (random per run),
    so that the same training gives the same file."""
    lines = []
    for line in model_text.splitlines(keepends=True):
        if line.startswith(NETWORK_LINES):
            line = line.split(":", 1)[0] + ": ]\n"
        lines.append(line)
    return "".join(lines)


def _best_iteration(curve: np.ndarray, stopping: int) -> int:
    """The iteration (1-based) LightGBM's early stopping would pick on ``curve`` (lower is
    better): the best so far, once ``stopping`` rounds have passed without improving it."""
    best = 0
    for i in range(len(curve)):
        if curve[i] < curve[best]:
            best = i
        elif i - best >= stopping:
            break
    return best + 1


def _curve(
    client: Any,
    model_text: str,
    path: Any,
    features: list[str],
    target: str,
    weight_col: str | None,
    metric: str,
) -> np.ndarray | None:
    """The metric after each iteration on a validation table, computed partition-wise."""
    import numpy as np

    files = parquet.part_files(path)
    parts = cluster.run_parts(
        client,
        files,
        _curve_part,
        model_text,
        features,
        target,
        weight_col,
        metric,
        what="validation curve",
    )
    weight = sum(w for _, w in parts)
    if not weight:
        return None
    total = np.sum([s for s, _ in parts], axis=0) / weight
    return np.sqrt(total) if metric == "rmse" else total


def _curve_part(
    index: int,
    path: Any,
    model_text: str,
    features: list[str],
    target: str,
    weight_col: str | None,
    metric: str,
) -> tuple[np.ndarray, float]:
    """(weighted loss summed over the rows, per iteration; the rows' total weight)."""
    import lightgbm as lgb
    import numpy as np

    frame = parquet.read_part(path)
    booster = lgb.Booster(model_str=model_text)
    total = booster.current_iteration()
    if frame.empty:
        return np.zeros(total), 0.0
    x = frame[features].to_numpy(dtype="float64")
    y = frame[target].to_numpy()
    w = frame[weight_col].to_numpy(dtype="float64") if weight_col else np.ones(len(frame))
    raw: Any = 0.0
    sums = np.empty(total)
    eps = 1e-15
    for it in range(total):
        raw = raw + booster.predict(x, start_iteration=it, num_iteration=1, raw_score=True)
        if metric == "binary_logloss":
            p = np.clip(1.0 / (1.0 + np.exp(-raw)), eps, 1 - eps)
            loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        elif metric == "multi_logloss":
            shifted = raw - raw.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = -np.maximum(logp[np.arange(len(y)), y.astype(int)], np.log(eps))
        else:  # rmse: summed squared errors here, the root is taken over all partitions
            loss = (raw - y) ** 2
        sums[it] = float(np.dot(w, loss))
    return sums, float(w.sum())
