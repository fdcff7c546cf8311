"""The ``evaluate`` stage: predictions of the trained model on every other input, and the
task's metrics (scikit-learn) per input, written as a DVC metrics file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.stages.context import StageContext
from pipespec.stages.tabular import read_table, write_table

if TYPE_CHECKING:
    import numpy as np

HEADLINE = {"binary": "auc", "multiclass": "logloss", "regression": "rmse"}
LOWER_IS_BETTER = {"logloss", "rmse", "mae", "brier"}


def run(ctx: StageContext) -> None:
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    task = ctx.params["dataset"]["task"]
    target = ctx.params["dataset"]["target"]
    threshold = float(ctx.params["evaluation"]["threshold"])
    booster = lgb.Booster(model_file=str(ctx.input("model")))
    metrics: dict[str, Any] = {}
    predictions = []
    for name, path in ctx.inputs.items():
        if name == "model":
            continue
        frame, _ = read_table(path)
        y = frame[target].to_numpy()
        features = frame.drop(columns=[target])
        pred = np.asarray(
            booster.predict(features, num_threads=ctx.params["compute"]["num_threads"])
        )
        metrics[name] = score(task, y, pred, threshold)
        part = pd.DataFrame({"split": name, "row": np.arange(len(frame)), "label": y})
        if pred.ndim == 2:
            for k in range(pred.shape[1]):
                part[f"p_{k}"] = pred[:, k]
        else:
            part["prediction"] = pred
        predictions.append(part)
    write_table(pd.concat(predictions, ignore_index=True), ctx.output("predictions"))
    write_json(ctx.output("metrics"), metrics)
    headline = ctx.params["evaluation"]["headline"] or HEADLINE[task]
    console().print(
        "  "
        + ", ".join(
            f"{split} {headline}={values.get(headline)}" for split, values in metrics.items()
        )
    )


def score(task: str, y: np.ndarray, pred: np.ndarray, threshold: float) -> dict[str, float]:
    """The task's metrics, rounded to 6 decimals so the JSON is readable and stable."""
    import numpy as np
    from sklearn import metrics as m

    out: dict[str, float] = {}
    if task == "binary":
        label = (pred >= threshold).astype(int)
        if len(np.unique(y)) == 2:
            out["auc"] = m.roc_auc_score(y, pred)
        out["logloss"] = m.log_loss(y, pred, labels=[0, 1])
        out["accuracy"] = m.accuracy_score(y, label)
        out["precision"] = m.precision_score(y, label, zero_division=0)
        out["recall"] = m.recall_score(y, label, zero_division=0)
        out["f1"] = m.f1_score(y, label, zero_division=0)
    elif task == "multiclass":
        label = pred.argmax(axis=1)
        out["logloss"] = m.log_loss(y, pred, labels=list(range(pred.shape[1])))
        out["accuracy"] = m.accuracy_score(y, label)
        out["macro_f1"] = m.f1_score(y, label, average="macro", zero_division=0)
    else:
        out["rmse"] = float(np.sqrt(m.mean_squared_error(y, pred)))
        out["mae"] = m.mean_absolute_error(y, pred)
        out["r2"] = m.r2_score(y, pred)
    return {k: round(float(v), 6) for k, v in out.items()}
