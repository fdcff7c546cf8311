"""Stage kinds as plain data: what each kind reads, takes and writes.

The engine compiles ``dvc.yaml`` from these declarations without importing the heavy
modules that implement them (LightGBM, scikit-learn, ...): ``entry`` names the function,
imported only when the stage runs. A user's own kind is a dotted import path to a function
whose module may declare ``READS``/``INPUTS``/``OUTPUTS`` (see ``docs/architecture.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipespec.core.errors import PipelineError

OutputType = Literal["out", "metrics", "plots"]


@dataclass(frozen=True)
class Output:
    """A file a stage writes. ``path`` may contain ``{stage}``, the stage's name.

    ``tasks`` limits the output to some values of ``dataset.task`` (a ROC curve exists for
    binary models only); ``props`` are DVC plot properties (template, x, y, title).
    """

    name: str
    path: str
    type: OutputType = "out"
    tasks: tuple[str, ...] = ()
    props: tuple[tuple[str, str], ...] = ()

    def for_stage(self, stage: str) -> str:
        return self.path.format(stage=stage)

    def active(self, task: object) -> bool:
        return not self.tasks or task in self.tasks


def _plot(
    name: str, file: str, template: str, x: str, y: str, title: str, tasks: tuple[str, ...] = ()
) -> Output:
    props = (("template", template), ("x", x), ("y", y), ("title", title))
    return Output(name, f"plots/{{stage}}/{file}", "plots", tasks, props)


@dataclass(frozen=True)
class StageKind:
    """A function the engine can run as a stage, and the contract it keeps."""

    name: str
    entry: str  # "module:function"
    reads: tuple[str, ...] = ()  # params keys (dotted) it reads: DVC re-runs it when they change
    inputs: tuple[str, ...] = ()  # required named inputs
    outputs: tuple[Output, ...] = ()
    any_inputs: bool = False  # accepts further named inputs (e.g. evaluate: any split)
    path_params: tuple[str, ...] = ()  # params holding a path the stage reads (a dependency)
    description: str = ""
    module_file: str | None = field(default=None, compare=False)

    def output(self, name: str) -> Output:
        for out in self.outputs:
            if out.name == name:
                return out
        raise KeyError(name)


_DATA = "data/{stage}"
BUILTIN: dict[str, StageKind] = {
    kind.name: kind
    for kind in (
        StageKind(
            name="load",
            entry="pipespec.stages.load:run",
            reads=("seed", "dataset", "compute.backend", "compute.partition_rows"),
            outputs=(Output("data", f"{_DATA}/data.parquet"),),
            path_params=("dataset.path",),
            description="read the dataset (file or embedded), sample it, write Parquet",
        ),
        StageKind(
            name="validate",
            entry="pipespec.stages.validate:run",
            reads=("schema", "dataset.target", "dataset.drop", "compute.backend"),
            inputs=("data",),
            outputs=(
                Output("data", f"{_DATA}/data.parquet"),
                Output("report", f"{_DATA}/report.json"),
                Output("quarantine", f"{_DATA}/quarantine.parquet"),
            ),
            path_params=("schema.path",),  # editing the schema file re-runs validation
            description="check the table against schema.path (pandera YAML); fail or quarantine",
        ),
        StageKind(
            name="split",
            entry="pipespec.stages.split:run",
            reads=("seed", "split", "dataset.target", "dataset.task", "compute.backend"),
            inputs=("data",),
            outputs=(
                Output("train", f"{_DATA}/train.parquet"),
                Output("valid", f"{_DATA}/valid.parquet"),
                Output("test", f"{_DATA}/test.parquet"),
            ),
            description="seeded train/valid/test split, stratified for classification",
        ),
        StageKind(
            name="featurize",
            entry="pipespec.stages.featurize:run",
            reads=(
                "features",
                "dataset.target",
                "dataset.task",
                "dataset.weight",
                "compute.backend",
            ),
            inputs=("train",),
            any_inputs=True,
            outputs=(
                Output("transforms", "models/{stage}/transforms.json"),
                Output("train", f"{_DATA}/train.parquet"),
                Output("valid", f"{_DATA}/valid.parquet"),
                Output("test", f"{_DATA}/test.parquet"),
            ),
            description="fit feature transforms on train (saved as JSON), apply to every split",
        ),
        StageKind(
            name="train",
            entry="pipespec.stages.train:run",
            reads=("seed", "dataset.target", "dataset.task", "dataset.weight", "model", "compute"),
            inputs=("train",),
            any_inputs=True,
            outputs=(
                Output("model", "models/{stage}/model.txt"),
                Output("metrics", "metrics/{stage}.json", "metrics"),
                _plot(
                    "importance",
                    "importance.csv",
                    "bar_horizontal_sorted",
                    "gain",
                    "feature",
                    "Feature importance (gain)",
                ),
            ),
            description="fit a LightGBM model, early stopping on the valid input",
        ),
        StageKind(
            name="evaluate",
            entry="pipespec.stages.evaluate:run",
            reads=("evaluation.headline", "evaluation.plots_on", "compute"),
            inputs=("bundle",),
            any_inputs=True,
            outputs=(
                Output("metrics", "metrics/{stage}.json", "metrics"),
                Output("predictions", f"{_DATA}/predictions.parquet"),
                _plot("roc", "roc.csv", "simple", "fpr", "tpr", "ROC", ("binary",)),
                _plot(
                    "pr",
                    "precision_recall.csv",
                    "simple",
                    "recall",
                    "precision",
                    "Precision-recall",
                    ("binary",),
                ),
                _plot(
                    "calibration",
                    "calibration.csv",
                    "linear",
                    "predicted",
                    "observed",
                    "Calibration",
                    ("binary",),
                ),
                _plot(
                    "confusion",
                    "confusion.csv",
                    "confusion",
                    "actual",
                    "predicted",
                    "Confusion matrix",
                    ("binary", "multiclass"),
                ),
                _plot(
                    "residuals",
                    "residuals.csv",
                    "scatter",
                    "actual",
                    "predicted",
                    "Predicted vs actual",
                    ("regression",),
                ),
            ),
            description="score the raw rows of every other input through the bundle's own "
            "predict path; the task's metrics, curves for dvc plots",
        ),
        StageKind(
            name="gate",
            entry="pipespec.stages.gate:run",
            reads=("evaluation.gates",),
            inputs=("metrics",),
            any_inputs=True,
            outputs=(Output("report", "metrics/{stage}.json", "metrics"),),
            description="check evaluation.gates against metrics files; a failed gate fails the run",
        ),
        StageKind(
            name="package",
            entry="pipespec.stages.package:run",
            reads=(
                "seed",
                "dataset",
                "split",
                "features",
                "model",
                "evaluation",
                "env",
                "compute",
                "production",
            ),
            inputs=("model", "transforms", "train"),
            # optional 'valid' (evaluation.optimize_threshold picks the threshold on it) and
            # 'metrics' (the train stage's, into the card); any input is hashed into the card
            any_inputs=True,
            outputs=(Output("bundle", "models/bundle"),),
            description="the production bundle: model, transforms, input schema, drift "
            "reference profile, model card, hashes",
        ),
        StageKind(
            name="behavior",
            entry="pipespec.stages.behavior:run",
            reads=("behavior",),
            inputs=("bundle", "data"),
            outputs=(
                Output("metrics", "metrics/{stage}.json", "metrics"),
                Output("report", "reports/{stage}/report.json"),
                Output("html", "reports/{stage}/report.html"),
                Output("card", "reports/{stage}/card.md"),
            ),
            path_params=("behavior.cases.path",),  # editing the cases re-runs the checks
            description="behaviour checks of the bundle: slices, weakest segments, invariance, "
            "directional, minimum-functionality cases, latency",
        ),
        StageKind(
            name="monitor",
            entry="pipespec.stages.monitor:run",
            reads=("production.monitor",),
            inputs=("bundle", "current"),
            outputs=(
                Output("metrics", "metrics/{stage}.json", "metrics"),
                Output("report", "reports/{stage}/report.json"),
                Output("html", "reports/{stage}/report.html"),
            ),
            description="drift of current data against a bundle's reference profile",
        ),
    )
}


def get_kind(name: str) -> StageKind:
    """A built-in kind by name, or a user's kind by import path ``pkg.module:function``."""
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        raise PipelineError(
            f"unknown stage kind '{name}'",
            hint=f"Built-in kinds: {', '.join(BUILTIN)}; or give a function as "
            "'package.module:function'.",
        )
    module_name, _, func = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineError(f"cannot import stage kind '{name}': {exc}") from None
    if not callable(getattr(module, func, None)):
        raise PipelineError(f"stage kind '{name}': module '{module_name}' has no function '{func}'")
    try:
        outputs = tuple(
            Output(n, str(p), t) for n, (p, t) in dict(getattr(module, "OUTPUTS", {})).items()
        )
    except (TypeError, ValueError, AttributeError):
        raise PipelineError(
            f"stage kind '{name}': OUTPUTS must map each output name to (path, type), "
            "type one of out, metrics, plots"
        ) from None
    bad = [o.name for o in outputs if o.type not in ("out", "metrics", "plots")]
    if bad:
        raise PipelineError(f"stage kind '{name}': output '{bad[0]}' has an unknown type")
    doc = (getattr(module, func).__doc__ or "").strip()
    return StageKind(
        name=name,
        entry=name,
        reads=tuple(getattr(module, "READS", ())),
        inputs=tuple(getattr(module, "INPUTS", ())),
        outputs=outputs,
        any_inputs=bool(getattr(module, "ANY_INPUTS", False)),
        path_params=tuple(getattr(module, "PATH_PARAMS", ())),
        description=doc.splitlines()[0] if doc else "",
        module_file=getattr(module, "__file__", None),
    )


def load_entry(kind: StageKind) -> Callable[[Any], None]:
    """Import the function that implements ``kind``."""
    module_name, _, func = kind.entry.partition(":")
    return getattr(importlib.import_module(module_name), func)
