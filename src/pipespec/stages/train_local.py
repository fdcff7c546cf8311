"""The ``train`` stage on ``compute=local``: one LightGBM process on the whole table, early
stopping on the valid inputs, optional k-fold cross-validation (``model.cv_folds``).

Deterministic: fixed seed, ``deterministic=true``, column-wise histograms and a fixed thread
count (``compute.num_threads``), so the same data and params give a byte-identical model
file. The job, parameters, weights and results are those every trainer shares
(``stages.training``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path
from pipespec.core.progress import progress
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import read_table
from pipespec.stages.training import (
    Job,
    class_factors,
    finish,
    job,
    label_counts,
    row_weights,
    showing,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def run(ctx: StageContext) -> None:
    """Train in this process and write the model at its best iteration, its metrics and
    importance."""
    import lightgbm as lgb

    work = job(ctx, threads=ctx.params["compute"]["num_threads"])
    params = work.params

    def dataset(path: Any, ref: Any = None) -> tuple[Any, int]:
        """A LightGBM Dataset of the table at ``path`` and its row count. The Dataset holds
        the only reference to its feature matrix, which it frees once it has binned it."""
        weight = [work.weight_col] if work.weight_col else []
        labels, _ = read_table(path, columns=[work.target, *weight])
        data = lgb.Dataset(
            feature_frame(path, work.features),
            label=labels[work.target],
            weight=sample_weights(labels, work),
            reference=ref,
            categorical_feature=work.categorical,
        )
        return data, len(labels)

    train_path = ctx.input("train")
    dtrain, train_rows = dataset(train_path)
    valid_sets, valid_names = [], []
    for name, path in ctx.inputs.items():
        if name == "train":
            continue
        valid, rows = dataset(path, dtrain)
        if rows:
            valid_sets.append(valid)
            valid_names.append(name)

    rounds, stopping = work.rounds, work.stopping
    summary: dict[str, Any] = {"train_rows": train_rows}
    folds = int(work.model["cv_folds"] or 0)
    if folds >= 2:
        summary["cv"] = cross_validate(
            params,
            dataset(train_path)[0],
            rounds,
            stopping,
            folds,
            stratified=work.task != "regression",
            seed=work.seed,
        )
    callbacks: list[Any] = []
    if stopping and valid_sets:
        callbacks.append(lgb.early_stopping(stopping, first_metric_only=True, verbose=False))
    with progress("boosting", rounds) as bar:
        callbacks.append(showing(bar, work.metric))
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
    finish(ctx, work, booster, best, summary)


def sample_weights(frame: pd.DataFrame, work: Job) -> np.ndarray | None:
    """The rows' weights (``training.row_weights``), the class factors counted on this
    table's own labels."""
    factors = None
    if work.class_weight is not None:
        counts = label_counts(frame[work.target].to_numpy(), len(work.classes or []))
        factors = class_factors(work.class_weight, work.classes, counts)
    return row_weights(frame, work.target, work.weight_col, factors)


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
