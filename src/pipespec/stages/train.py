"""The ``train`` stage: a LightGBM model, objective from ``dataset.task``, early stopping
on the ``valid`` input, saved in LightGBM's text format. Deterministic: fixed seed,
``deterministic=true``, column-wise histograms, fixed thread count."""

from __future__ import annotations

from typing import Any

from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.errors import DataError
from pipespec.stages.context import StageContext
from pipespec.stages.tabular import read_table

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


def lightgbm_params(
    model: Any, *, task: str, seed: int, threads: int, num_class: int | None
) -> dict[str, Any]:
    """The LightGBM parameter dict for a model config (named fields, then ``params``)."""
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
    params.update(
        model["params"].to_dict() if hasattr(model["params"], "to_dict") else dict(model["params"])
    )
    return params


def run(ctx: StageContext) -> None:
    import lightgbm as lgb

    train, meta = read_table(ctx.input("train"))
    task = ctx.params["dataset"]["task"]
    target = ctx.params["dataset"]["target"]
    model = ctx.params["model"]
    if target not in train.columns:
        raise DataError(f"target column '{target}' is not in {ctx.input('train')}")
    classes = meta.get("classes")
    params = lightgbm_params(
        model,
        task=task,
        seed=ctx.params["seed"],
        threads=ctx.params["compute"]["num_threads"],
        num_class=len(classes) if classes else None,
    )
    categorical = [c for c in meta.get("categorical", []) if c in train.columns]
    dtrain = lgb.Dataset(
        train.drop(columns=[target]),
        label=train[target],
        categorical_feature=categorical,
        free_raw_data=True,
    )
    valid_sets, valid_names = [], []
    for name, path in ctx.inputs.items():
        if name == "train":
            continue
        frame, _ = read_table(path)
        valid_sets.append(dtrain.create_valid(frame.drop(columns=[target]), label=frame[target]))
        valid_names.append(name)

    rounds = int(model["num_boost_round"])
    callbacks: list[Any] = []
    stopping = model["early_stopping_rounds"]
    if stopping and valid_sets:
        callbacks.append(lgb.early_stopping(int(stopping), first_metric_only=True, verbose=False))
    with _progress(rounds, params["metric"]) as on_iteration:
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
    summary: dict[str, Any] = {"best_iteration": best, "train_rows": len(train)}
    for valid_name, scores in booster.best_score.items():
        for metric, value in scores.items():
            summary[f"{valid_name}_{metric}"] = round(float(value), 6)
    write_json(ctx.output("metrics"), summary)
    console().print(
        f"  {best} trees (of {rounds} max); {params['metric']} "
        + ", ".join(f"{k}={v}" for k, v in summary.items() if k.endswith(params["metric"]))
    )


class _progress:
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
