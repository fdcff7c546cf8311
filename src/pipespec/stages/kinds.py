"""Stage kinds as plain data: what each kind reads, takes and writes.

Every kind, built-in or a user's, declares itself the same way: its module sets
``READS``, ``INPUTS``, ``OUTPUTS``, ``ANY_INPUTS`` and ``PATH_PARAMS`` (see
``docs/architecture.md``, "Stage kinds"), and ``get_kind`` is the one reader of those
declarations. The built-in names are short for the import paths in ``BUILTIN``.

Kinds are data: a stage module imports its heavy libraries (LightGBM, scikit-learn, pandas)
inside its functions, so reading a declaration imports only pipespec's own light modules,
and the engine compiles ``dvc.yaml`` without LightGBM. ``load_entry`` names the function the
stage runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, get_args

from pipespec.core.errors import PipelineError

OutputType = Literal["out", "metrics", "plots"]
OUTPUT_TYPES: tuple[str, ...] = get_args(OutputType)
PLOT_PROPS = ("template", "x", "y", "title")  # DVC plot properties an output may set
OUTPUT_OPTIONS = ("tasks", *PLOT_PROPS)

# The built-in kinds: a name -> the function that implements it. Each module declares the
# kind's contract itself, as a user's module does.
BUILTIN: dict[str, str] = {
    name: f"pipespec.stages.{name}:run"
    for name in (
        "load",
        "validate",
        "split",
        "featurize",
        "train",
        "evaluate",
        "gate",
        "package",
        "behavior",
        "monitor",
    )
}


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
    module_file: str | None = field(default=None, compare=False)  # a user's module (a dep)

    def output(self, name: str) -> Output:
        for out in self.outputs:
            if out.name == name:
                return out
        raise KeyError(name)


def get_kind(name: str) -> StageKind:
    """A built-in kind by name, or a user's kind by import path ``pkg.module:function``,
    read from the declarations of the function's module."""
    builtin = name in BUILTIN
    entry = BUILTIN.get(name, name)
    if ":" not in entry:
        raise PipelineError(
            f"unknown stage kind '{name}'",
            hint=f"Built-in kinds: {', '.join(BUILTIN)}; or give a function as "
            "'package.module:function'.",
        )
    module_name, _, func = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineError(f"cannot import stage kind '{name}': {exc}") from None
    function = getattr(module, func, None)
    if not callable(function):
        raise PipelineError(f"stage kind '{name}': module '{module_name}' has no function '{func}'")
    doc = (function.__doc__ or module.__doc__ or "").strip()
    return StageKind(
        name=name,
        entry=entry,
        reads=_names(name, module, "READS"),
        inputs=_names(name, module, "INPUTS"),
        outputs=_outputs(name, getattr(module, "OUTPUTS", {})),
        any_inputs=bool(getattr(module, "ANY_INPUTS", False)),
        path_params=_names(name, module, "PATH_PARAMS"),
        description=doc.splitlines()[0] if doc else "",
        # pipespec's own code is not a dependency of the stages (nor hashed into bundles)
        module_file=None if builtin else getattr(module, "__file__", None),
    )


def _names(kind: str, module: ModuleType, attribute: str) -> tuple[str, ...]:
    value = getattr(module, attribute, ())
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise PipelineError(f"stage kind '{kind}': {attribute} must be a sequence of strings")
    return tuple(value)


def _outputs(kind: str, declared: Any) -> tuple[Output, ...]:
    """``OUTPUTS``: name -> (path, type) or (path, type, options); the options are ``tasks``
    (the ``dataset.task`` values the output exists for) and DVC plot properties."""
    form = (
        f"stage kind '{kind}': OUTPUTS must map each output name to (path, type) or "
        f"(path, type, options), type one of {', '.join(OUTPUT_TYPES)}"
    )
    if not isinstance(declared, Mapping):
        raise PipelineError(form)
    outputs = []
    for out_name, spec in declared.items():
        if isinstance(spec, str) or not isinstance(spec, tuple | list) or len(spec) not in (2, 3):
            raise PipelineError(form)
        path, type_, *rest = spec
        options = rest[0] if rest else {}
        if type_ not in OUTPUT_TYPES:
            raise PipelineError(f"stage kind '{kind}': output '{out_name}' has an unknown type")
        unknown = set(options) - set(OUTPUT_OPTIONS) if isinstance(options, Mapping) else {0}
        if unknown:
            raise PipelineError(
                f"stage kind '{kind}': output '{out_name}': options take only "
                f"{', '.join(OUTPUT_OPTIONS)}"
            )
        props = tuple((k, str(options[k])) for k in PLOT_PROPS if k in options)
        tasks = tuple(str(t) for t in options.get("tasks", ()))
        outputs.append(Output(str(out_name), str(path), type_, tasks, props))
    return tuple(outputs)


def load_entry(kind: StageKind) -> Callable[[Any], None]:
    """Import the function that implements ``kind``."""
    module_name, _, func = kind.entry.partition(":")
    return getattr(importlib.import_module(module_name), func)
