"""The ``train`` stage: a LightGBM model, objective from ``dataset.task``, early stopping
on the ``valid`` input, saved in LightGBM's text format.

Deterministic by default: fixed seed, ``deterministic=true``, column-wise histograms and a
fixed thread count, so the same data and params give a byte-identical model file. Optional
k-fold cross-validation (``model.cv_folds``) reports out-of-fold metrics; sample weights come
from ``dataset.weight``, class weights from ``model.class_weight``.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import read_table, table_columns

# The kind's contract (docs/architecture.md, "Stage kinds")
# compute: the thread count and, on Dask, the number of workers change the model; where the
# cluster is (compute.address, memory) does not, so it is not a param of the stage
READS = (
    "seed", "dataset.target", "dataset.task", "dataset.weight", "model",
    "compute.backend", "compute.num_threads", "compute.workers",
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

OBJECTIVES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
METRICS = {"binary": "binary_logloss", "multiclass": "multi_logloss", "regression": "rmse"}
NAMED = (
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_data_in_leaf",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l1",
    "lambda_l2",
)
# model.* keys that are pipespec's, not LightGBM parameters
OWN_KEYS = {
    "name",
    "objective",
    "num_boost_round",
    "early_stopping_rounds",
    "class_weight",
    "cv_folds",
    "params",
    *NAMED,
}


def lightgbm_params(
    model: Any, *, task: str, seed: int, threads: int, num_class: int | None
) -> dict[str, Any]:
    """The LightGBM parameter dict for a model config (named fields, then ``params``)."""
    extra = (
        model["params"].to_dict() if hasattr(model["params"], "to_dict") else dict(model["params"])
    )
    unknown_top = sorted(set(model) - OWN_KEYS)  # LightGBM names, checked at composition
    params: dict[str, Any] = {
        "objective": model["objective"] or OBJECTIVES[task],
        "metric": METRICS[task],
        **{key: model[key] for key in NAMED},
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }
    if task == "multiclass":
        params["num_class"] = num_class
    params.update({k: model[k] for k in unknown_top})
    params.update(extra)
    return params


MONOTONE = ("monotone_constraints", "monotone_constraint", "mc", "monotonic_cst")


def monotone_by_name(params: dict[str, Any], features: list[str]) -> None:
    """``model.params.monotone_constraints`` may map feature names to -1/0/1 instead of
    listing one value per feature in the table's order: turn the mapping into that list."""
    for key in MONOTONE:
        given = params.get(key)
        if not isinstance(given, dict):
            continue
        unknown = sorted(set(map(str, given)) - set(features))
        if unknown:
            close = difflib.get_close_matches(unknown[0], features, n=1)
            raise ConfigError(
                f"model.params.{key}: no feature '{unknown[0]}'",
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + f"Features: {', '.join(features)}",
            )
        bad = {k: v for k, v in given.items() if v not in (-1, 0, 1)}
        if bad:
            raise ConfigError(f"model.params.{key}: values must be -1, 0 or 1, got {bad}")
        params[key] = [int(given.get(f, 0)) for f in features]


def run(ctx: StageContext) -> None:
    import lightgbm as lgb

    if ctx.dask:
        from pipespec.stages.train_dask import run as run_on_dask

        return run_on_dask(ctx)
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
    with _Progress(rounds, params["metric"]) as on_iteration:
        callbacks.append(on_iteration)
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
    _write_importance(booster, best, ctx.output("importance"))
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


def class_factors(class_weight: Any, classes: list[Any] | None, counts: Any) -> np.ndarray:
    """The weight of each class; ``counts``: training rows per class code."""
    import numpy as np

    classes = classes or []  # a classification task (checked at composition)
    if class_weight == "balanced":
        counts = np.asarray(counts, dtype="float64")
        per_class = counts.sum() / (len(classes) * np.maximum(counts, 1))
    else:  # a mapping
        given = class_weight.to_dict() if hasattr(class_weight, "to_dict") else class_weight
        names = [str(c) for c in classes]
        unknown = [k for k in given if str(k) not in names]
        if unknown:
            raise ConfigError(
                f"model.class_weight names unknown class(es) {unknown}; classes: {names}"
            )
        by_name = {str(k): float(v) for k, v in given.items()}
        per_class = np.array([by_name.get(n, 1.0) for n in names])
    return np.asarray(per_class, dtype="float64")


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


def _write_importance(booster: Any, best: int, path: Any) -> None:
    import pandas as pd

    from pipespec.core.atomic import atomic_path

    gain = booster.feature_importance(importance_type="gain", iteration=best)
    table = pd.DataFrame({"feature": booster.feature_name(), "gain": gain.round(6)})
    table = table.sort_values(["gain", "feature"], ascending=[False, True])
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")


class _Progress:
    """A rich progress bar over boosting rounds showing the running validation metric."""

    def __init__(self, total: int, metric: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.metric = metric
        self.progress = Progress(
            TextColumn("  boosting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[score]}"),
            console=console(),
            transient=True,
        )
        self.task = self.progress.add_task("train", total=total, score="")

    def __enter__(self) -> Any:
        self.progress.start()
        return self._callback

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _callback(self, env: Any) -> None:
        score = ""
        for data_name, metric, value, _ in env.evaluation_result_list or ():
            if metric == self.metric:
                score = f"{data_name} {metric} {value:.5f}"
                break
        self.progress.update(self.task, completed=env.iteration + 1, score=score)
