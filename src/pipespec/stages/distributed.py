"""What the distributed trainers share (``train_dask`` on Dask, ``train_spark`` on Spark):
LightGBM's network parameters for one machine per task, the fixed ranking of the machines,
the validation curve computed part by part on the cluster and the cut at the iteration that
early stopping would have chosen, and the model text without the run's network addresses.

Neither ``lightgbm.dask`` nor a barrier stage of Spark can stop early (every machine would
have to agree after each round): every round is trained, the curve is reduced from the
parts, and the model is cut at the best iteration, so early stopping works as locally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.stages import parquet

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NETWORK_LINES = ("[machines: ", "[local_listen_port: ")
NETWORK_KEYS = ("machines", "local_listen_port", "num_machines", "tree_learner", "pre_partition")


class _Quiet:
    """A LightGBM logger that keeps warnings and drops information."""

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        if "will be ignored" not in msg:  # n_jobs: each worker's thread count rules
            console().print(f"  [yellow]lightgbm:[/] {msg}")


QUIET = _Quiet()


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


def row_weights(
    frame: pd.DataFrame, target: str, weight_col: str | None, factors: np.ndarray | None
) -> pd.Series:
    """Each row's weight: its weight column times its class's factor."""
    import numpy as np
    import pandas as pd

    weights = np.ones(len(frame))
    if weight_col:
        weights = frame[weight_col].to_numpy(dtype="float64")
    if factors is not None:
        weights = weights * factors[frame[target].to_numpy()]
    return pd.Series(weights, index=frame.index, name="weight")


def without_network(model_text: str) -> str:
    """The model text without the cluster's network addresses and ports (random per run),
    so that the same training gives the same file."""
    lines = []
    for line in model_text.splitlines(keepends=True):
        if line.startswith(NETWORK_LINES):
            line = line.split(":", 1)[0] + ": ]\n"
        lines.append(line)
    return "".join(lines)


def best_iteration(curve: np.ndarray, stopping: int) -> int:
    """The iteration (1-based) LightGBM's early stopping would pick on ``curve`` (lower is
    better): the best so far, once ``stopping`` rounds have passed without improving it."""
    best = 0
    for i in range(len(curve)):
        if curve[i] < curve[best]:
            best = i
        elif i - best >= stopping:
            break
    return best + 1


def curve(
    mapper: Callable[..., list[Any]],
    model_text: str,
    path: Any,
    features: list[str],
    target: str,
    weight_col: str | None,
    metric: str,
) -> np.ndarray | None:
    """The metric after each iteration on a validation table: ``curve_part`` mapped over
    its parts by ``mapper`` (a backend's ``map``), then reduced here."""
    import numpy as np

    files = parquet.part_files(path)
    parts = mapper(
        files, curve_part, model_text, features, target, weight_col, metric,
        what="validation curve",
    )  # fmt: skip
    weight = sum(w for _, w in parts)
    if not weight:
        return None
    total = np.sum([s for s, _ in parts], axis=0) / weight
    return np.sqrt(total) if metric == "rmse" else total


def curve_part(
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
