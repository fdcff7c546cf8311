"""The ``train`` stage on ``compute=spark``: LightGBM's own data-parallel training in one
barrier stage of Spark, one LightGBM machine per task (``compute.executors`` tasks).

LightGBM has no pyspark integration (and SynapseML's JVM packages cannot be fetched here):
each barrier task reads its block of the training table's parts (contiguous parts, in row
order, task ``k`` the ``k``-th block), the tasks swap their addresses with ``allGather``
and train together over LightGBM's sockets, the mechanism ``xgboost.spark`` uses. Ranks are
the tasks' partition numbers, so the same data, params and number of tasks give the same
model file. Early stopping is done as on Dask (``stages.distributed``): every round is
trained, the validation curve is reduced from the parts, the model is cut at the best
iteration. The parameters, weights and model text are the local trainer's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.errors import DataError, PipespecError
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.distributed import (
    best_iteration,
    curve,
    network_params,
    ranked_hosts,
    row_weights,
    without_network,
)
from pipespec.stages.training import (
    METRICS,
    OBJECTIVES,
    class_factors,
    lightgbm_params,
    monotone_by_name,
    write_importance,
)

if TYPE_CHECKING:
    import numpy as np


def run(ctx: StageContext) -> None:
    """Train on the executors (see the module's docstring), write the model cut at the best
    iteration, its metrics and importance."""
    import lightgbm as lgb
    import numpy as np

    task = ctx.params["dataset"]["task"]
    target = ctx.params["dataset"]["target"]
    weight_col = ctx.params["dataset"]["weight"]
    model = ctx.params["model"]
    meta = parquet.table_meta(ctx.input("train"))
    classes = meta.classes
    params = lightgbm_params(
        model, task=task, seed=ctx.params["seed"], threads=1,
        num_class=len(classes) if classes else None,
    )  # fmt: skip
    rounds = int(model["num_boost_round"])
    files = parquet.part_files(ctx.input("train"))
    names, _ = parquet.table_columns(ctx.input("train"))
    if target not in names:
        raise DataError(f"target column '{target}' is not in {ctx.input('train')}")
    features = [c for c in names if c not in (target, weight_col)]
    categorical = [c for c in meta.categorical or [] if c in features]
    monotone_by_name(params, features)
    machines = max(1, min(int(ctx.params["compute"]["executors"]), len(files)))
    blocks = [
        [str(files[i]) for i in block] for block in np.array_split(range(len(files)), machines)
    ]
    with cluster.backend(ctx) as backend:
        factors = None
        if model["class_weight"] is not None:
            counts = np.sum(backend.map(files, _label_counts, target, len(classes or []),
                                        what="counting classes"), axis=0)  # fmt: skip
            factors = class_factors(model["class_weight"], classes, counts)
        console().print(f"  LightGBM data-parallel on {machines} Spark tasks, {rounds} rounds")
        clock = time.perf_counter()
        machine = _Machine(blocks, features, target, weight_col, factors, categorical, params,
                           rounds)  # fmt: skip
        tasks = backend.session.range(0, machines, 1, numPartitions=machines)
        try:
            rows = tasks.mapInArrow(machine, "rank long, model string", barrier=True).collect()
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise PipespecError(
                f"LightGBM's training on Spark failed: {text[0] if text else type(exc).__name__}"
            ) from None
        model_text = next(r["model"] for r in rows if r["rank"] == 0)
        booster = lgb.Booster(model_str=model_text)
        console().print(f"  trained in {time.perf_counter() - clock:.1f}s")
        total = booster.current_iteration()
        best, scores = total, {}
        valid = [(n, p) for n, p in ctx.inputs.items() if n != "train"]
        if valid and params["metric"] == METRICS[task] and params["objective"] == OBJECTIVES[task]:
            for name, path in valid:
                found = curve(backend.map, model_text, path, features, target, weight_col,
                              params["metric"])  # fmt: skip
                if found is not None:
                    scores[name] = found
            stopping = model["early_stopping_rounds"]
            if scores and stopping:
                best = best_iteration(next(iter(scores.values())), int(stopping))
        elif valid:
            console().print(
                f"  [yellow]note:[/] no validation curve for metric '{params['metric']}' "
                "under Spark: all rounds kept"
            )
    with atomic_path(ctx.output("model")) as tmp:
        tmp.write_text(without_network(booster.model_to_string(num_iteration=best)))
    summary: dict[str, Any] = {"train_rows": int(sum(parquet.part_rows(files))),
                               "best_iteration": best}  # fmt: skip
    for name, values in scores.items():
        summary[f"{name}_{params['metric']}"] = round(float(values[best - 1]), 6)
    write_json(ctx.output("metrics"), summary)
    write_importance(booster, best, ctx.output("importance"))
    shown = [f"{k}={v}" for k, v in summary.items() if k.endswith(params["metric"])]
    console().print(f"  {best} trees (of {rounds} max) " + ", ".join(shown))


def _label_counts(index: int, path: Any, target: str, n: int) -> np.ndarray:
    """Training rows per class code in one part."""
    import numpy as np

    labels = parquet.read_part(path, columns=[target])[target].to_numpy()
    return np.bincount(labels.astype("int64"), minlength=n)


class _Machine:
    """One LightGBM machine: what each barrier task runs."""

    def __init__(
        self,
        blocks: list[list[str]],
        features: list[str],
        target: str,
        weight_col: str | None,
        factors: np.ndarray | None,
        categorical: list[str],
        params: dict[str, Any],
        rounds: int,
    ) -> None:
        self.blocks, self.features, self.target = blocks, features, target
        self.weight_col, self.factors, self.categorical = weight_col, factors, categorical
        self.params, self.rounds = params, rounds

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import json

        import lightgbm as lgb
        import pandas as pd
        import pyarrow as pa
        from pyspark import BarrierTaskContext

        for _ in batches:  # the task's own number comes from its context
            pass
        context = BarrierTaskContext.get()
        rank = context.partitionId()
        host = context.getTaskInfos()[rank].address.rsplit(":", 1)[0]
        found = context.allGather(json.dumps([rank, host, _free_port()]))
        hosts = ranked_hosts(found)
        frames = [parquet.read_part(Path(path)) for path in self.blocks[rank]]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        weights = None
        if self.weight_col or self.factors is not None:
            weights = row_weights(frame, self.target, self.weight_col, self.factors).to_numpy()
        data = lgb.Dataset(
            frame[self.features], label=frame[self.target], weight=weights,
            categorical_feature=self.categorical,
        )  # fmt: skip
        params = {**self.params, **network_params(hosts, rank), "num_threads": 1}
        with _quiet_stdout():  # LightGBM's network set-up log, printed by its C++ core
            booster = lgb.train(params, data, num_boost_round=self.rounds)
        text = booster.model_to_string() if rank == 0 else ""
        context.barrier()
        yield pa.RecordBatch.from_pydict({"rank": [rank], "model": [text]})


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The task's standard output (file descriptor 1) to /dev/null for a while."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _free_port() -> int:
    """A port free on this machine now, for LightGBM to listen on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("", 0))
        port: int = sock.getsockname()[1]
        return port
