"""The ``train`` stage on ``compute=dask``: ``lightgbm.dask``, one LightGBM machine per
worker, on the partitions of the featurized tables. The job, parameters and weights are every
trainer's (``stages.training``); the class counts, early stopping and the model text are the
distributed trainers' (``stages.distributed``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipespec.core.console import console
from pipespec.stages import cluster, distributed, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.training import job, row_weights

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def run(ctx: StageContext) -> None:
    """Train with ``lightgbm.dask`` on the cluster, one LightGBM machine per worker.

    Partitions are placed on the workers in a fixed order, so the same data, params and
    number of workers give the same model. ``lightgbm.dask`` has no early stopping: every
    round is trained, the validation curve is computed on the cluster from the trees, and
    the model is cut at the iteration early stopping would have chosen.
    """
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    work = job(ctx, threads=1)
    params = dict(work.params)
    params.pop("num_threads")  # lightgbm.dask gives each worker its own thread count
    estimator_class = DaskLGBMRegressor if work.task == "regression" else DaskLGBMClassifier
    files = parquet.part_files(ctx.input("train"))
    with cluster.connect(ctx, ranked=True) as client:
        mapper = cluster.Dask(client).map
        clock = time.perf_counter()
        table = cluster.pinned(client, parquet.frame(ctx.input("train")))
        placed = time.perf_counter() - clock
        weights = None
        if work.weight_col or work.class_weight is not None:
            factors = distributed.factors(mapper, files, work)
            weights = table.map_partitions(
                _weights, work.target, work.weight_col, factors, meta=("weight", "float64")
            )
        console().print(
            f"  lightgbm.dask on {len(cluster.workers(client))} workers, {work.rounds} rounds "
            f"(training rows placed on the workers in {placed:.1f}s)"
        )
        clock = time.perf_counter()
        estimator = estimator_class(client=client, n_estimators=work.rounds, **params)
        with _quiet():
            estimator.fit(
                table[work.features],
                table[work.target],
                sample_weight=weights,
                categorical_feature=work.categorical,
            )
        booster = estimator.booster_
        console().print(f"  trained in {time.perf_counter() - clock:.1f}s")
        best, scores = distributed.early_stopping(mapper, booster, ctx, work, where="Dask")
    distributed.write(ctx, work, booster, best, scores)


def _weights(
    frame: pd.DataFrame, target: str, weight_col: str | None, factors: np.ndarray | None
) -> pd.Series:
    """A partition's row weights (``training.row_weights``) as the Series Dask expects."""
    import pandas as pd

    return pd.Series(
        row_weights(frame, target, weight_col, factors), index=frame.index, name="weight"
    )


class _Quiet:
    """A LightGBM logger that keeps warnings and drops information."""

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        if "will be ignored" not in msg:  # n_jobs: each worker's thread count rules
            console().print(f"  [yellow]lightgbm:[/] {msg}")


_QUIET = _Quiet()


@contextmanager
def _quiet() -> Iterator[None]:
    """LightGBM's Python side quiet while it trains: its information log dropped (for the
    rest of the stage's process: ``lightgbm.dask``'s port-finding chatter) and its warning
    that a parameter "will be ignored" (``n_jobs``: each worker's thread count rules)."""
    import warnings

    import lightgbm as lgb

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Parameter .* will be ignored", UserWarning)
        lgb.register_logger(_QUIET)
        yield
