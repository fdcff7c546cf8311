"""The ``train`` stage kind: a LightGBM model, objective from ``dataset.task``, early
stopping on the ``valid`` input, saved in LightGBM's text format.

This module is the kind's contract and its dispatch only: ``compute.backend`` picks the
trainer, ``train_local`` (one process), ``train_dask`` (``lightgbm.dask``) or ``train_spark``
(LightGBM's data-parallel mode in a Spark barrier stage). What they share (the job read from
the params, LightGBM parameters, class and row weights, the progress callback, the results)
is ``stages.training``; what the two distributed ones share is ``stages.distributed``.

Deterministic by default: fixed seed, ``deterministic=true``, column-wise histograms and a
fixed thread count (or number of workers), so the same data and params give a
byte-identical model file. Optional k-fold cross-validation (``model.cv_folds``, local)
reports out-of-fold metrics; sample weights come from ``dataset.weight``, class weights from
``model.class_weight``.
"""

from __future__ import annotations

from pipespec.stages.context import StageContext

# The kind's contract (docs/architecture.md, "Stage kinds")
# compute: the thread count and, on Dask and Spark, the number of workers (executors) change
# the model; where the cluster is (compute.address, memory) does not: not a param of the stage
READS = (
    "seed", "dataset.target", "dataset.task", "dataset.weight", "model",
    "compute.backend", "compute.num_threads", "compute.workers", "compute.executors",
)  # fmt: skip
INPUTS = ("train",)
ANY_INPUTS = True  # 'valid' for early stopping
OUTPUTS = {
    "model": ("models/{stage}/model.txt", "out"),
    "metrics": ("metrics/{stage}.json", "metrics"),
    "importance": (
        "plots/{stage}/importance.csv",
        "plots",
        {
            "template": "bar_horizontal_sorted",
            "x": "gain",
            "y": "feature",
            "title": "Feature importance (gain)",
        },
    ),
}


def run(ctx: StageContext) -> None:
    """Train with the trainer of ``compute.backend`` (the trainers are imported only when
    chosen: Dask's and Spark's modules stay unloaded on a local run)."""
    backend = ctx.params.get_path("compute.backend")
    if backend == "dask":
        from pipespec.stages.train_dask import run as trainer
    elif backend == "spark":
        from pipespec.stages.train_spark import run as trainer
    else:
        from pipespec.stages.train_local import run as trainer
    trainer(ctx)
