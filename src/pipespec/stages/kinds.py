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

import ast
import copy
import importlib
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pipespec.core.errors import PipelineError

OutputType = Literal["out", "metrics", "plots"]
OUTPUT_TYPES: tuple[str, ...] = get_args(OutputType)
PLOT_PROPS = ("template", "x", "y", "title")  # DVC plot properties an output may set
PASS_ON = ("passes", "unless")  # the output is input `passes` unchanged unless `unless` is set
OUTPUT_OPTIONS = ("tasks", *PASS_ON, *PLOT_PROPS)
DECLARATIONS = ("READS", "INPUTS", "OUTPUTS", "ANY_INPUTS", "PATH_PARAMS")

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
        "compile",
    )
}


@dataclass(frozen=True)
class StageOutput:
    """A file a stage writes. ``path`` may contain ``{stage}``, the stage's name.

    ``tasks`` limits the output to some values of ``dataset.task`` (a ROC curve exists for
    binary models only); ``props`` are DVC plot properties (template, x, y, title).
    ``passes`` names an input the output is unchanged while the params key ``unless`` is
    empty (validate without a schema file passes its table on): the stages that take the
    output then read that input itself, and nobody writes, hashes or caches a copy.
    """

    name: str
    path: str
    type: OutputType = "out"
    tasks: tuple[str, ...] = ()
    props: tuple[tuple[str, str], ...] = ()
    passes: str = ""  # an input the output is, unchanged, while params key `unless` is empty
    unless: str = ""

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
    outputs: tuple[StageOutput, ...] = ()
    any_inputs: bool = False  # accepts further named inputs (e.g. evaluate: any split)
    path_params: tuple[str, ...] = ()  # params holding a path the stage reads (a dependency)
    description: str = ""
    module_file: str | None = field(default=None, compare=False)  # a user's module (a dep)

    def output(self, name: str) -> StageOutput:
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
    found = _from_source(name, module_name, func)
    if found is None:
        found = _from_module(name, module_name, func)
    declared, doc, module_file = found
    return StageKind(
        name=name,
        entry=entry,
        reads=_names(name, declared, "READS"),
        inputs=_names(name, declared, "INPUTS"),
        outputs=_outputs(name, declared.get("OUTPUTS", {}), _names(name, declared, "INPUTS")),
        any_inputs=bool(declared.get("ANY_INPUTS", False)),
        path_params=_names(name, declared, "PATH_PARAMS"),
        description=doc.strip().splitlines()[0] if doc.strip() else "",
        # pipespec's own code is not a dependency of the stages (nor hashed into bundles)
        module_file=None if builtin else module_file,
    )


Found = tuple[dict[str, Any], str, str | None]  # declarations, docstring, module file
_TOP = re.compile(r"^(?:async\s+def|def|class|@)\b", re.MULTILINE)


def builtin_kinds() -> list[StageKind]:
    """Every built-in kind (the warm runner reads them once, so a forked stage parses none)."""
    return [get_kind(name) for name in BUILTIN]


_READ: dict[tuple[str, str, int, int], Found | None] = {}  # (file, function, mtime, size)


def _from_source(kind: str, module_name: str, func: str) -> Found | None:
    """The declarations read from the module's source without running it: the literal
    assignments before its first function or class (where every built-in module has them).
    None when they cannot be read that way (a computed value, a declaration assigned again
    further down, no source file, a function not defined by ``def``): then the module is
    imported. A file is read again only when its modification time or size changed."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise PipelineError(f"cannot import stage kind '{kind}': {exc}") from None
    if spec is None:
        raise PipelineError(f"cannot import stage kind '{kind}': No module named '{module_name}'")
    if not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        stat = Path(spec.origin).stat()
    except OSError:
        return None
    key = (spec.origin, func, stat.st_mtime_ns, stat.st_size)
    if key not in _READ:
        _READ[key] = _read_source(spec.origin, func)
    found = _READ[key]
    return None if found is None else (copy.deepcopy(found[0]), found[1], found[2])


def _read_source(origin: str, func: str) -> Found | None:
    try:
        text = Path(origin).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first = _TOP.search(text)
    head, rest = (text[: first.start()], text[first.start() :]) if first else (text, "")
    definition = re.search(
        rf"^def {re.escape(func)}\b.*?(?=^\S|\Z)", rest, re.MULTILINE | re.DOTALL
    )
    again = re.search(rf"^(?:{'|'.join(DECLARATIONS)})\b", rest, re.MULTILINE)
    if definition is None or again is not None:
        return None
    try:
        tree = ast.parse(head)
        function = ast.parse(definition.group(0)).body[0]
    except (SyntaxError, IndexError):
        return None
    declared: dict[str, Any] = {}
    read: set[ast.AST] = set()  # the names that the top-level assignments read here bind
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        names = [t for t in targets if isinstance(t, ast.Name) and t.id in DECLARATIONS]
        if not names:
            continue
        try:
            value = ast.literal_eval(node.value)  # type: ignore[attr-defined]
        except ValueError:
            return None
        declared.update(dict.fromkeys((t.id for t in names), value))
        read.update(names)
    if not isinstance(function, ast.FunctionDef) or any(
        node not in read for node in _bindings(tree)
    ):
        return None  # a declaration bound some other way (in an `if`, imported, `+=`)
    doc = ast.get_docstring(function) or ast.get_docstring(tree) or ""
    return declared, doc, origin


def _bindings(tree: ast.AST) -> list[ast.AST]:
    """Every place in ``tree`` that binds a declaration's name."""
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            if node.id in DECLARATIONS:
                found.append(node)
        elif isinstance(node, ast.alias) and (node.asname or node.name) in DECLARATIONS:
            found.append(node)
    return found


def _from_module(kind: str, module_name: str, func: str) -> Found:
    """The declarations as attributes of the imported module."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineError(f"cannot import stage kind '{kind}': {exc}") from None
    function = getattr(module, func, None)
    if not callable(function):
        raise PipelineError(f"stage kind '{kind}': module '{module_name}' has no function '{func}'")
    declared = {k: getattr(module, k) for k in DECLARATIONS if hasattr(module, k)}
    doc = function.__doc__ or module.__doc__ or ""
    return declared, doc, getattr(module, "__file__", None)


def _names(kind: str, declared: Mapping[str, Any], attribute: str) -> tuple[str, ...]:
    value = declared.get(attribute, ())
    if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value):
        raise PipelineError(f"stage kind '{kind}': {attribute} must be a sequence of strings")
    return tuple(value)


def _outputs(kind: str, declared: Any, inputs: tuple[str, ...]) -> tuple[StageOutput, ...]:
    """``OUTPUTS``: name -> (path, type) or (path, type, options); the options are ``tasks``
    (the ``dataset.task`` values the output exists for), ``passes`` and ``unless`` (the
    output is that input unchanged while that params key is empty) and DVC plot
    properties."""
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
        passes, unless = (options.get(k, "") for k in PASS_ON)
        if (bool(passes) != bool(unless)) or (passes and passes not in inputs):
            raise PipelineError(
                f"stage kind '{kind}': output '{out_name}': 'passes' names one of its INPUTS "
                f"({', '.join(inputs) or 'none'}) and 'unless' a params key, both or neither"
            )
        outputs.append(
            StageOutput(str(out_name), str(path), type_, tasks, props, str(passes), str(unless))
        )
    return tuple(outputs)


def load_entry(kind: StageKind) -> Callable[[Any], None]:
    """Import the function that implements ``kind``."""
    module_name, _, func = kind.entry.partition(":")
    return getattr(importlib.import_module(module_name), func)
