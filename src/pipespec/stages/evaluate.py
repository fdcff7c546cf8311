"""The ``evaluate`` stage: the bundle's predictions on the raw rows of every other input,
through exactly the code path ``Bundle.predict`` runs (the input schema's check, the
transforms' interpreter, the model), so the numbers are those of the model that ships and a
reading or transform difference between training and serving cannot hide. The task's
metrics per input (``core/model_metrics``, numpy) go to a DVC metrics file, and curves for
``dvc plots`` computed on one input (``evaluation.plots_on``, default ``test``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import atomic_path, write_json
from pipespec.core.console import console
from pipespec.core.documents import class_columns
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import read_table, write_table

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("evaluation.headline", "evaluation.plots_on", "compute.backend", "compute.num_threads")
INPUTS = ("bundle",)
ANY_INPUTS = True  # every further input is a split to score
OUTPUTS = {
    "metrics": ("metrics/{stage}.json", "metrics"),
    "predictions": ("data/{stage}/predictions.parquet", "out"),
    "roc": (
        "plots/{stage}/roc.csv",
        "plots",
        {"tasks": ("binary",), "template": "simple", "x": "fpr", "y": "tpr", "title": "ROC"},
    ),
    "pr": (
        "plots/{stage}/precision_recall.csv",
        "plots",
        {
            "tasks": ("binary",),
            "template": "simple",
            "x": "recall",
            "y": "precision",
            "title": "Precision-recall",
        },
    ),
    "calibration": (
        "plots/{stage}/calibration.csv",
        "plots",
        {
            "tasks": ("binary",),
            "template": "linear",
            "x": "predicted",
            "y": "observed",
            "title": "Calibration",
        },
    ),
    "confusion": (
        "plots/{stage}/confusion.csv",
        "plots",
        {
            "tasks": ("binary", "multiclass"),
            "template": "confusion",
            "x": "actual",
            "y": "predicted",
            "title": "Confusion matrix",
        },
    ),
    "residuals": (
        "plots/{stage}/residuals.csv",
        "plots",
        {
            "tasks": ("regression",),
            "template": "scatter",
            "x": "actual",
            "y": "predicted",
            "title": "Predicted vs actual",
        },
    ),
}

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

HEADLINE = {"binary": "auc", "multiclass": "logloss", "regression": "rmse"}
MAX_CURVE_POINTS = 400
MAX_SCATTER_POINTS = 3000


def run(ctx: StageContext) -> None:
    import numpy as np
    import pandas as pd

    from pipespec.bundle.bundle import Bundle, invalid_rows_error
    from pipespec.bundle.inputs import MALFORMED
    from pipespec.bundle.transforms import encode_target

    spec = ctx.params["evaluation"]
    threads = ctx.params["compute"]["num_threads"]
    bundle = Bundle.load(ctx.input("bundle"), project=ctx.root)  # its own custom modules
    task, target = bundle.task, bundle.output.target
    scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    warned: dict[str, int] = {}
    for name, path in ctx.inputs.items():
        if name == "bundle":
            continue
        frame, _ = read_table(path)
        if frame.empty:
            console().print(f"  {name}: no rows, not scored")
            continue
        if target not in frame.columns:
            raise DataError(
                f"input '{name}' ({path}) has no target column '{target}': give the evaluate "
                "stage the raw split tables (split.valid, split.test)"
            )
        # the raw columns, through exactly what Bundle.predict runs
        checked = bundle.check(frame)
        if any(reason in MALFORMED for _, reason, _, _ in checked.problems):
            raise invalid_rows_error(checked, f"input '{name}' ({path})")
        rows = np.flatnonzero(checked.valid)
        if checked.n_invalid:  # unusual rows production.strict refuses: not served, not scored
            console().print(
                f"  {name}: {checked.n_invalid:,} rows left out, as serving would refuse them "
                "(production.strict)"
            )
        warned[name] = checked.n_warned
        scored[name] = (
            encode_target(bundle.transforms.target, frame[target])[rows],
            bundle.score(checked, rows, threads=threads),
        )
    if not scored:
        raise ConfigError(f"stage '{ctx.name}': every input to score is empty")

    threshold = bundle.threshold
    metrics: dict[str, Any] = {
        name: score(task, y, p, threshold) for name, (y, p) in scored.items()
    }
    if task == "binary":
        metrics["threshold"] = round(threshold, 6)

    parts = []
    for name, (y, pred) in scored.items():
        part = pd.DataFrame({"split": name, "row": np.arange(len(y)), "label": y})
        if pred.ndim == 2:
            for k, column in enumerate(class_columns(list(bundle.classes))):
                part[column] = pred[:, k]
        else:
            part["prediction"] = pred
        parts.append(part)
    write_table(pd.concat(parts, ignore_index=True), ctx.output("predictions"))
    write_json(ctx.output("metrics"), metrics)

    plot_on = spec["plots_on"] if spec["plots_on"] in scored else list(scored)[-1]
    write_plots(task, *scored[plot_on], threshold, ctx.outputs)
    headline = spec["headline"] or HEADLINE[task]
    console().print(
        "  "
        + ", ".join(
            f"{split} {headline}={values.get(headline)}"
            for split, values in metrics.items()
            if isinstance(values, dict)
        )
        + (f"  ({sum(warned.values()):,} rows with unusual values)" if any(warned.values()) else "")
    )


def score(task: str, y: np.ndarray, pred: np.ndarray, threshold: float) -> dict[str, float]:
    """The task's metrics (core/model_metrics, scikit-learn's definitions), rounded to 6
    decimals so the JSON is readable and stable. AUC and average precision need both
    classes, MAPE a truth without zeros, R² a target that varies: otherwise they are left
    out."""
    import math

    import numpy as np

    from pipespec.core.model_metrics import EVALUATION, task_metrics

    names = list(EVALUATION[task])
    if task == "regression" and not np.all(y != 0):  # MAPE is undefined where the truth is 0
        names.remove("mape")
    values = task_metrics(task, y, pred, names, threshold=threshold, zero_division=0.0)
    return {k: round(float(v), 6) for k, v in values.items() if math.isfinite(v)}


def write_plots(
    task: str, y: np.ndarray, pred: np.ndarray, threshold: float, outputs: dict[str, Path]
) -> None:
    """CSV files that the plot templates declared in dvc.yaml render."""
    import numpy as np
    import pandas as pd

    from pipespec.core.model_metrics import precision_recall_curve, roc_curve

    tables: dict[str, pd.DataFrame] = {}
    if task == "binary":
        fpr, tpr, _ = roc_curve(y, pred)
        keep = _thin(len(fpr))
        tables["roc"] = pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})
        precision, recall, _ = precision_recall_curve(y, pred)
        keep = _thin(len(recall))
        tables["pr"] = pd.DataFrame({"recall": recall[keep], "precision": precision[keep]})
        bins = np.clip((pred * 10).astype(int), 0, 9)
        calib = pd.DataFrame({"bin": bins, "p": pred, "y": y}).groupby("bin")
        tables["calibration"] = pd.DataFrame(
            {"predicted": calib["p"].mean(), "observed": calib["y"].mean()}
        )
        tables["confusion"] = pd.DataFrame(
            {"actual": y, "predicted": (pred >= threshold).astype(int)}
        )
    elif task == "multiclass":
        tables["confusion"] = pd.DataFrame({"actual": y, "predicted": pred.argmax(axis=1)})
    else:
        keep = np.random.default_rng(0).permutation(len(y))[:MAX_SCATTER_POINTS]
        keep.sort()
        tables["residuals"] = pd.DataFrame({"actual": y[keep], "predicted": pred[keep]})
    for name, table in tables.items():
        if name in outputs:
            with atomic_path(outputs[name]) as tmp:
                table.round(6).to_csv(tmp, index=False, lineterminator="\n")


def _thin(n: int) -> Any:
    import numpy as np

    if n <= MAX_CURVE_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).round().astype(int))
