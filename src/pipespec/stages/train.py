"""The ``train`` stage: a LightGBM model, objective from ``dataset.task``, early stopping
on the ``valid`` input, saved in LightGBM's text format.

Deterministic by default: fixed seed, ``deterministic=true``, column-wise histograms and a
fixed thread count, so the same data and params give a byte-identical model file. Optional
k-fold cross-validation (``model.cv_folds``) reports out-of-fold metrics; sample weights come
from ``dataset.weight``, class weights from ``model.class_weight``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.errors import DataError
from pipespec.core.numbers import number
from pipespec.core.progress import Bar, progress
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import read_table, table_columns
from pipespec.stages.training import (  # the shared parameters (also the distributed trainers')
    class_factors,
    lightgbm_params,
    monotone_by_name,
    write_importance,
)

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

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def run(ctx: StageContext) -> None:
    import lightgbm as lgb

    backend = ctx.params.get_path("compute.backend")
    if backend == "dask":
        from pipespec.stages.train_dask import run as run_on_dask

        return run_on_dask(ctx)
    if backend == "spark":
        from pipespec.stages.train_spark import run as run_on_spark

        return run_on_spark(ctx)
    task = ctx.params["dataset"]["task"]
    target = ctx.params["dataset"]["target"]
    weight_col = ctx.params["dataset"]["weight"]
    model = ctx.params["model"]
    train_path = ctx.input("train")
    names, meta = table_columns(train_path)
    if target not in names:
        raise DataError(f"target column '{target}' is not in {train_path}")
    classes = meta.classes
    params = lightgbm_params(
        model,
        task=task,
        seed=ctx.params["seed"],
        threads=ctx.params["compute"]["num_threads"],
        num_class=len(classes) if classes else None,
    )
    feature_cols = [c for c in names if c not in (target, weight_col)]
    categorical = [c for c in meta.categorical or [] if c in feature_cols]
    monotone_by_name(params, feature_cols)

    def dataset(path: Any, ref: Any = None) -> tuple[Any, int]:
        """A LightGBM Dataset of the table at ``path`` and its row count. The Dataset holds
        the only reference to its feature matrix, which it frees once it has binned it."""
        labels, _ = read_table(path, columns=[target, *([weight_col] if weight_col else [])])
        w = sample_weights(labels, target, weight_col, model["class_weight"], classes)
        data = lgb.Dataset(
            feature_frame(path, feature_cols),
            label=labels[target],
            weight=w,
            reference=ref,
            categorical_feature=categorical,
        )
        return data, len(labels)

    dtrain, train_rows = dataset(train_path)
    valid_sets, valid_names = [], []
    for name, path in ctx.inputs.items():
        if name == "train":
            continue
        valid, rows = dataset(path, dtrain)
        if rows:
            valid_sets.append(valid)
            valid_names.append(name)

    rounds = int(model["num_boost_round"])
    stopping = model["early_stopping_rounds"]
    summary: dict[str, Any] = {"train_rows": train_rows}
    folds = int(model["cv_folds"] or 0)
    if folds >= 2:
        summary["cv"] = cross_validate(
            params,
            dataset(train_path)[0],
            rounds,
            stopping,
            folds,
            stratified=task != "regression",
            seed=ctx.params["seed"],
        )
    callbacks: list[Any] = []
    if stopping and valid_sets:
        callbacks.append(lgb.early_stopping(int(stopping), first_metric_only=True, verbose=False))
    with progress("boosting", rounds) as bar:
        callbacks.append(_showing(bar, params["metric"]))
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=rounds,
            valid_sets=valid_sets,
            valid_names=valid_names,
            callbacks=callbacks,
        )
    best = booster.best_iteration or booster.current_iteration()
    with atomic_path(ctx.output("model")) as tmp:
        booster.save_model(str(tmp), num_iteration=best)
    summary["best_iteration"] = best
    for valid_name, scores in booster.best_score.items():
        for metric, value in scores.items():
            summary[f"{valid_name}_{metric}"] = round(float(value), 6)
    write_json(ctx.output("metrics"), summary)
    write_importance(booster, best, ctx.output("importance"))
    shown = [f"{k}={v}" for k, v in summary.items() if k.endswith(params["metric"])]
    console().print(f"  {tree_count(best, booster.num_model_per_iteration())} (of {rounds} "
                    "rounds max) " + ", ".join(shown))  # fmt: skip


def tree_count(rounds: int, per_round: int) -> str:
    """Trees reported one way, as the bundle's card counts them: a multiclass model grows
    one tree per class in each boosting round."""
    if per_round <= 1:
        return f"{rounds} trees ({rounds} boosting rounds)"
    return f"{rounds * per_round} trees ({rounds} boosting rounds x {per_round} classes)"


def feature_frame(path: Any, names: list[str]) -> pd.DataFrame:
    """The feature columns of a Parquet table as a frame over one column-major matrix of the
    dtype LightGBM would convert them to, filled a column at a time.

    LightGBM takes such a frame without copying it (``_pandas_to_numpy`` gives the matrix
    back, and LightGBM reads column-major matrices as they are), so the features exist once,
    never also as a whole pandas table: the train stage's peak is about one matrix, not a
    table, a matrix and a frame of the selected columns. The values, their order and the
    layout are those LightGBM gets from ``read_table``'s frame, so the model file is the same
    byte for byte. Dictionary (pandas category) and other non-numeric columns take the frame
    path, where LightGBM handles them itself.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    fields = [schema.field(name) for name in names]
    plain = all(
        pa.types.is_floating(f.type) or pa.types.is_integer(f.type) or pa.types.is_boolean(f.type)
        for f in fields
    )
    if not plain:
        frame, _ = read_table(path, columns=names)
        return frame
    meta = file.metadata
    # the dtypes of read_table's frame (pandas' own from the file's metadata, such as Int8),
    # then LightGBM's rule: their numpy types and float32, so that the result is a float
    frame_dtypes = schema.empty_table().select(names).to_pandas().dtypes
    dtypes: list[Any] = [np.float32]
    for f, frame_dtype in zip(fields, frame_dtypes, strict=True):
        kind = frame_dtype.type
        if not isinstance(frame_dtype, pd.api.extensions.ExtensionDtype) and not np.issubdtype(
            frame_dtype, np.floating
        ):  # numpy integers and booleans with nulls become float64 in the frame
            column = schema.get_field_index(f.name)
            stats = [
                meta.row_group(g).column(column).statistics for g in range(meta.num_row_groups)
            ]
            if any(st is None or not st.has_null_count or st.null_count for st in stats):
                kind = np.float64
        dtypes.append(kind)
    dtype = np.result_type(*dtypes)
    matrix = np.empty((meta.num_rows, len(names)), dtype=dtype, order="F")
    for j, name in enumerate(names):
        values = file.read(columns=[name]).column(0).to_numpy()
        if values.dtype == object:  # booleans with nulls: None -> NaN, as pandas does
            values = pd.array(values, dtype="boolean").to_numpy(dtype="float64", na_value=np.nan)
        matrix[:, j] = values
        del values
    return pd.DataFrame(matrix, columns=names, copy=False)


def sample_weights(
    frame: pd.DataFrame,
    target: str,
    weight_col: str | None,
    class_weight: Any,
    classes: list[Any] | None,
) -> np.ndarray | None:
    """Row weights: the weight column times the class weight of each row's label."""
    import numpy as np

    weights = frame[weight_col].to_numpy(dtype="float64") if weight_col else None
    if class_weight is None:
        return weights
    labels = frame[target].to_numpy()
    counts = np.bincount(labels, minlength=len(classes or []))
    row = class_factors(class_weight, classes, counts)[labels]
    return row if weights is None else weights * row


def cross_validate(
    params: dict[str, Any],
    data: Any,
    rounds: int,
    stopping: int | None,
    folds: int,
    *,
    stratified: bool,
    seed: int,
) -> dict[str, Any]:
    """k-fold CV on the training split: mean and std of the out-of-fold metric."""
    import lightgbm as lgb

    callbacks: list[Any] = [lgb.early_stopping(int(stopping), verbose=False)] if stopping else []
    result: dict[str, Any] = lgb.cv(
        dict(params),
        data,
        num_boost_round=rounds,
        nfold=folds,
        stratified=stratified,
        shuffle=True,
        seed=seed,
        callbacks=callbacks,
    )
    metric = params["metric"]
    mean, std = result[f"valid {metric}-mean"], result[f"valid {metric}-stdv"]
    return {
        "folds": folds,
        "best_iteration": len(mean),
        f"{metric}_mean": round(mean[-1], 6),
        f"{metric}_std": round(std[-1], 6),
    }


def _showing(bar: Bar, metric: str) -> Callable[[Any], None]:
    """A LightGBM callback that moves ``bar`` each round, with the running ``metric``."""

    def callback(env: Any) -> None:
        note = ""
        for data_name, name, value, _ in env.evaluation_result_list or ():
            if name == metric:
                note = f"{data_name} {name} {number(value, 5, notation='f')}"
                break
        bar.update(env.iteration + 1, note=note)

    return callback
