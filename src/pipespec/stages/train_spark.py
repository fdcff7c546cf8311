"""The ``train`` stage on ``compute=spark``: LightGBM's own data-parallel training in one
barrier stage of Spark, one LightGBM machine per task (``compute.executors`` tasks).

LightGBM has no pyspark integration (and SynapseML's JVM packages cannot be fetched here):
each barrier task reads its block of the training table's parts (contiguous parts, in row
order, task ``k`` the ``k``-th block), the tasks swap their addresses with ``allGather``
and train together over LightGBM's sockets, the mechanism ``xgboost.spark`` uses. Ranks are
the tasks' partition numbers, so the same data, params and number of tasks give the same
model file. Early stopping is done as on Dask (``stages.distributed``): every round is
trained, the validation curve is reduced from the parts, the model is cut at the best
iteration. The job, parameters and weights are every trainer's (``stages.training``); the
class counts, early stopping, the model text and LightGBM's quiet are the distributed
trainers' (``stages.distributed``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.errors import PipespecError
from pipespec.stages import cluster, distributed, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.training import job as job_of
from pipespec.stages.training import row_weights

if TYPE_CHECKING:
    import numpy as np


def run(ctx: StageContext) -> None:
    """Train on the executors (see the module's docstring), write the model cut at the best
    iteration, its metrics and importance."""
    import lightgbm as lgb
    import numpy as np

    work = job_of(ctx, threads=1)
    files = parquet.part_files(ctx.input("train"))
    machines = max(1, min(int(ctx.params["compute"]["executors"]), len(files)))
    blocks = [
        [str(files[i]) for i in block] for block in np.array_split(range(len(files)), machines)
    ]
    with cluster.backend(ctx) as backend:
        factors = distributed.factors(backend.map, files, work)
        console().print(f"  LightGBM data-parallel on {machines} Spark tasks, {work.rounds} rounds")
        clock = time.perf_counter()
        machine = _Machine(blocks, work.features, work.target, work.weight_col, factors,
                           work.categorical, work.params, work.rounds)  # fmt: skip
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
        best, scores = distributed.early_stopping(
            backend.map, booster, ctx, work, where="Spark", model_text=model_text
        )
    distributed.write(ctx, work, booster, best, scores)


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
        weights = row_weights(frame, self.target, self.weight_col, self.factors)
        data = lgb.Dataset(
            frame[self.features], label=frame[self.target], weight=weights,
            categorical_feature=self.categorical,
        )  # fmt: skip
        params = {**self.params, **network_params(hosts, rank), "num_threads": 1}
        with _quiet_stdout():  # LightGBM's network set-up log, from its C++ core
            booster = lgb.train(params, data, num_boost_round=self.rounds)
        text = booster.model_to_string() if rank == 0 else ""
        context.barrier()
        yield pa.RecordBatch.from_pydict({"rank": [rank], "model": [text]})


def network_params(hosts: Sequence[tuple[str, int]], rank: int) -> dict[str, Any]:
    """LightGBM's parameters for data-parallel training as machine ``rank`` of ``hosts``
    (``(address, port)`` in rank order, the same list on every machine): each machine has
    its own rows (``pre_partition``) and its own listening port."""
    return {
        "tree_learner": "data",
        "num_machines": len(hosts),
        "machines": ",".join(f"{host}:{port}" for host, port in hosts),
        "local_listen_port": hosts[rank][1],
        "pre_partition": True,
    }


def ranked_hosts(messages: Sequence[str]) -> list[tuple[str, int]]:
    """The machines' ``(address, port)`` in rank order, from the ``[rank, address, port]``
    JSON messages the tasks swapped (in whatever order they arrived). The rank is the index
    of the block of parts a machine trains on, fixed by the table (part files in row order),
    not by where or when a task started."""
    import json

    return [(str(host), int(port)) for _, host, port in sorted(json.loads(m) for m in messages)]


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The process's standard output (file descriptor 1) to /dev/null for a while: LightGBM's
    C++ core prints its network set-up there, past any Python logger."""
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
