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
READS = ("seed", "dataset.target", "dataset.task", "dataset.weight", "model", "compute")
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
    unknown_top = sorted(set(model) - OWN_KEYS)  # e.g. `+model.num_leavs=3`
    check_lightgbm_names(
        {**{k: model[k] for k in unknown_top}, **extra}, prefix={k: "model" for k in unknown_top}
    )
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


def check_lightgbm_names(params: dict[str, Any], prefix: dict[str, str] | None = None) -> None:
    """Reject parameter names LightGBM does not know, with the closest valid names."""
    known = _known_params()
    if not known:
        return
    for name in params:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            key = f"{(prefix or {}).get(name, 'model.params')}.{name}"
            raise ConfigError(
                f"{key}: '{name}' is not a LightGBM parameter",
                hint=(f"Did you mean {', '.join(close)}? " if close else "")
                + "See https://lightgbm.readthedocs.io/en/stable/Parameters.html",
            )


def _known_params() -> set[str]:
    """Every LightGBM parameter name and alias, from LightGBM itself."""
    try:
        from lightgbm.basic import _ConfigAliases

        aliases = _ConfigAliases._get_all_param_aliases()
    except (ImportError, AttributeError):  # an internal API: skip the check if it moved
        return set()
    return {name for names in aliases.values() for name in names} | set(aliases)


def run(ctx: StageContext) -> None:
    import lightgbm as lgb

    if ctx.params["compute"]["backend"] == "dask":
        return run_dask(ctx)
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
    console().print(f"  {best} trees (of {rounds} max) " + ", ".join(shown))


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

    if classes is None:
        raise ConfigError("model.class_weight applies to classification tasks only")
    if class_weight == "balanced":
        counts = np.asarray(counts, dtype="float64")
        per_class = counts.sum() / (len(classes) * np.maximum(counts, 1))
    elif isinstance(class_weight, dict) or hasattr(class_weight, "to_dict"):
        given = class_weight.to_dict() if hasattr(class_weight, "to_dict") else class_weight
        names = [str(c) for c in classes]
        unknown = [k for k in given if str(k) not in names]
        if unknown:
            raise ConfigError(
                f"model.class_weight names unknown class(es) {unknown}; classes: {names}"
            )
        by_name = {str(k): float(v) for k, v in given.items()}
        per_class = np.array([by_name.get(n, 1.0) for n in names])
    else:
        raise ConfigError(
            f"model.class_weight must be null, 'balanced' or a mapping, got {class_weight!r}"
        )
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


# --- compute=dask ------------------------------------------------------------------------

NETWORK_LINES = ("[machines: ", "[local_listen_port: ")


class _Quiet:
    """A LightGBM logger that keeps warnings and drops information."""

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        if "will be ignored" not in msg:  # n_jobs: each worker's thread count rules
            console().print(f"  [yellow]lightgbm:[/] {msg}")


_QUIET = _Quiet()


def run_dask(ctx: StageContext) -> None:
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

    from pipespec.stages import cluster

    task = ctx.params["dataset"]["task"]
    target = ctx.params["dataset"]["target"]
    weight_col = ctx.params["dataset"]["weight"]
    model = ctx.params["model"]
    if int(model["cv_folds"] or 0) >= 2:
        raise ConfigError(
            "model.cv_folds is not supported with compute=dask",
            hint="Run cross-validation with compute=local on a sample (dataset.sample).",
        )
    meta = cluster.table_meta(ctx.input("train"))
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
    table = cluster.frame(ctx.input("train"))
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
                _row_weights, target, weight_col, factors, meta=("weight", "float64")
            )
        console().print(
            f"  lightgbm.dask on {len(cluster.workers(client))} workers, {rounds} rounds "
            f"(training rows placed on the workers in {placed:.1f}s)"
        )
        clock = time.perf_counter()
        estimator = estimator_class(client=client, n_estimators=rounds, **params)
        with warnings.catch_warnings():  # "n_jobs will be ignored": the workers' threads rule
            warnings.filterwarnings("ignore", "Parameter .* will be ignored", UserWarning)
            lgb.register_logger(_QUIET)  # lightgbm.dask's port-finding chatter
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
                curve = _curve(client, text, path, features, target, weight_col, params["metric"])
                if curve is not None:
                    scores[name] = curve
            stopping = model["early_stopping_rounds"]
            if scores and stopping:
                best = _best_iteration(next(iter(scores.values())), int(stopping))
            console().print(
                f"  validation curve of {', '.join(scores)} in {time.perf_counter() - clock:.1f}s"
            )
        elif valid:
            console().print(
                f"  [yellow]note:[/] no validation curve for metric '{params['metric']}' "
                "under Dask: all rounds kept"
            )
    with atomic_path(ctx.output("model")) as tmp:
        tmp.write_text(_without_network(booster.model_to_string(num_iteration=best)))
    summary: dict[str, Any] = {"train_rows": int(sum(cluster.part_rows(
        cluster.part_files(ctx.input("train"))))), "best_iteration": best}  # fmt: skip
    for name, curve in scores.items():
        summary[f"{name}_{params['metric']}"] = round(float(curve[best - 1]), 6)
    write_json(ctx.output("metrics"), summary)
    _write_importance(booster, best, ctx.output("importance"))
    shown = [f"{k}={v}" for k, v in summary.items() if k.endswith(params["metric"])]
    console().print(f"  {best} trees (of {rounds} max) " + ", ".join(shown))


def _row_weights(
    frame: pd.DataFrame, target: str, weight_col: str | None, factors: np.ndarray | None
) -> pd.Series:
    import numpy as np
    import pandas as pd

    weights = np.ones(len(frame))
    if weight_col:
        weights = frame[weight_col].to_numpy(dtype="float64")
    if factors is not None:
        weights = weights * factors[frame[target].to_numpy()]
    return pd.Series(weights, index=frame.index, name="weight")


def _without_network(model_text: str) -> str:
    """The model text without the cluster's network addresses and ports (random per run),
    so that the same training gives the same file."""
    lines = []
    for line in model_text.splitlines(keepends=True):
        if line.startswith(NETWORK_LINES):
            line = line.split(":", 1)[0] + ": ]\n"
        lines.append(line)
    return "".join(lines)


def _best_iteration(curve: np.ndarray, stopping: int) -> int:
    """The iteration (1-based) LightGBM's early stopping would pick on ``curve`` (lower is
    better): the best so far, once ``stopping`` rounds have passed without improving it."""
    best = 0
    for i in range(len(curve)):
        if curve[i] < curve[best]:
            best = i
        elif i - best >= stopping:
            break
    return best + 1


def _curve(
    client: Any,
    model_text: str,
    path: Any,
    features: list[str],
    target: str,
    weight_col: str | None,
    metric: str,
) -> np.ndarray | None:
    """The metric after each iteration on a validation table, computed partition-wise."""
    import numpy as np

    from pipespec.stages import cluster

    files = cluster.part_files(path)
    parts = cluster.run_parts(
        client,
        files,
        _curve_part,
        model_text,
        features,
        target,
        weight_col,
        metric,
        what="validation curve",
    )
    weight = sum(w for _, w in parts)
    if not weight:
        return None
    total = np.sum([s for s, _ in parts], axis=0) / weight
    return np.sqrt(total) if metric == "rmse" else total


def _curve_part(
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

    from pipespec.stages.cluster import read_part

    frame = read_part(path)
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
