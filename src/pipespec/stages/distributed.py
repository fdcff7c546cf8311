"""What the distributed trainers share (``train_dask`` on Dask, ``train_spark`` on Spark):
the class factors counted part by part, the validation curve computed part by part on the
cluster and the cut at the iteration that early stopping would have chosen, and the model text
without the run's network addresses.

Neither ``lightgbm.dask`` nor a barrier stage of Spark can stop early (every machine would
have to agree after each round): every round is trained, the curve is reduced from the
parts, and the model is cut at the best iteration, so early stopping works as locally.
What every trainer shares, the local one too, is ``stages.training``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path
from pipespec.core.console import console
from pipespec.stages import parquet
from pipespec.stages.training import Job, class_factors, finish, label_counts

if TYPE_CHECKING:
    import numpy as np

    from pipespec.stages.context import StageContext

# a backend's map: ``mapper(parts, func, *args, what=...)`` gives ``func(index, part, *args)``
# for every part, in part order (``cluster.Local``, ``cluster.Dask``, ``spark.Spark``)
Mapper = Callable[..., list[Any]]

NETWORK_LINES = ("[machines: ", "[local_listen_port: ")


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


def factors(mapper: Mapper, files: Sequence[Any], job: Job) -> np.ndarray | None:
    """The class factors of ``model.class_weight`` (None without it), the classes counted
    part by part on the cluster."""
    import numpy as np

    if job.class_weight is None:
        return None
    n = len(job.classes or [])
    counts = np.sum(mapper(files, _label_counts, job.target, n, what="counting classes"), axis=0)
    return class_factors(job.class_weight, job.classes, counts)


def _label_counts(index: int, path: Any, target: str, n: int) -> np.ndarray:
    """Training rows per class code in one part."""
    return label_counts(parquet.read_part(path, columns=[target])[target].to_numpy(), n)


def early_stopping(
    mapper: Mapper,
    booster: Any,
    ctx: StageContext,
    job: Job,
    *,
    where: str,
    model_text: str | None = None,
) -> tuple[int, dict[str, np.ndarray]]:
    """The iteration to keep of ``booster``, trained for every round (its text
    ``model_text``, if at hand), and the validation curve of each valid input: early
    stopping on the first valid input's curve, as LightGBM's ``first_metric_only``. Without
    valid inputs, or with an objective or metric of the user's (no curve is computed for
    them), every round is kept. ``where`` names the backend in the note that says so."""
    best = booster.current_iteration()
    scores: dict[str, np.ndarray] = {}
    valid = [(n, p) for n, p in ctx.inputs.items() if n != "train"]
    if not valid:
        return best, scores
    if not job.default_loss:
        console().print(
            f"  [yellow]note:[/] no validation curve for metric '{job.metric}' "
            f"under {where}: all rounds kept"
        )
        return best, scores
    clock = time.perf_counter()
    text = booster.model_to_string() if model_text is None else model_text
    for name, path in valid:
        found = curve(mapper, text, path, job)
        if found is not None:
            scores[name] = found
    if scores and job.stopping:
        best = best_iteration(next(iter(scores.values())), job.stopping)
    console().print(
        f"  validation curve of {', '.join(scores)} in {time.perf_counter() - clock:.1f}s"
    )
    return best, scores


def write(
    ctx: StageContext, job: Job, booster: Any, best: int, scores: dict[str, np.ndarray]
) -> None:
    """The model cut at ``best`` without the run's network addresses, then the metrics (the
    training rows, the best iteration, each valid input's score there) and what every
    trainer writes (``training.finish``)."""
    with atomic_path(ctx.output("model")) as tmp:
        tmp.write_text(without_network(booster.model_to_string(num_iteration=best)))
    rows = sum(parquet.part_rows(parquet.part_files(ctx.input("train"))))
    summary: dict[str, Any] = {"train_rows": int(rows), "best_iteration": best}
    for name, values in scores.items():
        summary[f"{name}_{job.metric}"] = round(float(values[best - 1]), 6)
    finish(ctx, job, booster, best, summary)


def curve(mapper: Mapper, model_text: str, path: Any, job: Job) -> np.ndarray | None:
    """The metric after each iteration on a validation table: ``curve_part`` mapped over
    its parts by ``mapper`` (a backend's ``map``), then reduced here."""
    import numpy as np

    metric = job.metric
    files = parquet.part_files(path)
    parts = mapper(
        files, curve_part, model_text, job.features, job.target, job.weight_col, metric,
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
