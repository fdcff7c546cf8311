"""The ``train`` stage on ``compute=dask``: ``lightgbm.dask``, one LightGBM machine per
worker, on the partitions of the featurized tables. The parameters, weights and the model's
text are the local trainer's (``stages.train``)."""

from __future__ import annotations

from typing import Any

from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.errors import DataError
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.distributed import (
    QUIET,
    best_iteration,
    row_weights,
    without_network,
)
from pipespec.stages.distributed import (
    curve as curve_of,
)
from pipespec.stages.training import (
    METRICS,
    OBJECTIVES,
    class_factors,
    lightgbm_params,
    monotone_by_name,
    write_importance,
)


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
                row_weights, target, weight_col, factors, meta=("weight", "float64")
            )
        console().print(
            f"  lightgbm.dask on {len(cluster.workers(client))} workers, {rounds} rounds "
            f"(training rows placed on the workers in {placed:.1f}s)"
        )
        clock = time.perf_counter()
        estimator = estimator_class(client=client, n_estimators=rounds, **params)
        with warnings.catch_warnings():  # "n_jobs will be ignored": the workers' threads rule
            warnings.filterwarnings("ignore", "Parameter .* will be ignored", UserWarning)
            lgb.register_logger(QUIET)  # lightgbm.dask's port-finding chatter
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
                found = curve_of(cluster.Dask(client).map, text, path, features, target,
                                 weight_col, params["metric"])  # fmt: skip
                if found is not None:
                    scores[name] = found
            stopping = model["early_stopping_rounds"]
            if scores and stopping:
                best = best_iteration(next(iter(scores.values())), int(stopping))
            console().print(
                f"  validation curve of {', '.join(scores)} in {time.perf_counter() - clock:.1f}s"
            )
        elif valid:
            console().print(
                f"  [yellow]note:[/] no validation curve for metric '{params['metric']}' "
                "under Dask: all rounds kept"
            )
    with atomic_path(ctx.output("model")) as tmp:
        tmp.write_text(without_network(booster.model_to_string(num_iteration=best)))
    summary: dict[str, Any] = {"train_rows": int(sum(parquet.part_rows(
        parquet.part_files(ctx.input("train"))))), "best_iteration": best}  # fmt: skip
    for name, values in scores.items():
        summary[f"{name}_{params['metric']}"] = round(float(values[best - 1]), 6)
    write_json(ctx.output("metrics"), summary)
    write_importance(booster, best, ctx.output("importance"))
    shown = [f"{k}={v}" for k, v in summary.items() if k.endswith(params["metric"])]
    console().print(f"  {best} trees (of {rounds} max) " + ", ".join(shown))
