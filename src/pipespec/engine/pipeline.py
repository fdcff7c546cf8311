"""Pipelines as plain data: parsed from ``pipelines/*.yaml``, checked, resolved to paths.

A pipeline names its stages, a kind each, and wires inputs to earlier outputs by
``STAGE.OUTPUT``. Compiling to DVC lives in ``compile.py``; running in ``runner.py``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Any

import yaml

from pipespec.core.errors import PipelineError
from pipespec.engine.project import Project
from pipespec.stages.kinds import BUILTIN, StageKind, StageOutput, get_kind

STAGE_KEYS = ("kind", "inputs", "outputs", "description")
# A stage name reaches command lines, task ids and file names: nothing an option or a shell
# could read as anything but a word.
STAGE_NAME = re.compile(r"[a-z][a-z0-9_]*")
FILE_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
RESERVED = ("configs",)  # the freshness-check stage the compiler adds
MISSING = object()  # what ``lookup`` gives for a key the params do not have


def lookup(params: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key path of ``params``, or ``MISSING``."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


@dataclass(frozen=True)
class Stage:
    """One stage of a pipeline, its inputs and outputs resolved to project-relative paths."""

    name: str
    kind: StageKind
    inputs: dict[str, str]  # input name -> path
    upstream: tuple[str, ...]  # stages whose outputs it takes
    outputs: dict[str, str]  # output name -> path
    source: str  # the pipelines/ file declaring it
    after: tuple[str, ...] = ()  # files of stages that pass it an input on (run after them)

    def outputs_of(self, type_: str) -> list[str]:
        return [p for o, p in self.declared_outputs() if o.type == type_]

    def declared_outputs(self) -> list[tuple[StageOutput, str]]:
        """(declaration, path) of each output this stage writes."""
        return [(o, self.outputs[o.name]) for o in self.kind.outputs if o.name in self.outputs]


@dataclass(frozen=True)
class Pipeline:
    """Every stage of every file in ``pipelines/``, in dependency order."""

    stages: tuple[Stage, ...]

    def get(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        names = [s.name for s in self.stages]
        close = difflib.get_close_matches(name, names, n=1)
        raise PipelineError(
            f"no stage '{name}' in pipelines/",
            hint=(f"Did you mean '{close[0]}'? " if close else "") + f"Stages: {', '.join(names)}",
        )


def load_pipeline(project: Project, params: dict[str, Any] | None = None) -> Pipeline:
    """Parse and check every ``pipelines/*.yaml`` of ``project``.

    With ``params``, outputs that do not apply to ``dataset.task`` are left out (a
    regression model has no ROC curve), and an output a stage passes on unchanged
    (``StageOutput.passes``: validate without a schema file) is no file of its own: the
    stages that take it read the passing stage's input; without, every declared output is
    listed.
    """
    import sys

    if str(project.root) not in sys.path:  # a user's own kinds live in the project
        sys.path.insert(0, str(project.root))
    files = sorted(project.pipelines.glob("*.yaml")) if project.pipelines.is_dir() else []
    if not files:
        raise PipelineError(f"no pipeline files: {project.rel(project.pipelines)}/*.yaml is empty")
    raw: list[tuple[str, str, dict[str, Any]]] = []  # (file, stage name, spec)
    seen: dict[str, str] = {}
    for path in files:
        rel = project.rel(path)
        if not FILE_STEM.fullmatch(path.stem):
            raise PipelineError(
                f"{rel}: a pipelines/ file name takes letters, digits, '_', '-' and '.', "
                "starting with a letter, digit or '_'",
                hint="The file's name becomes an Airflow task and DAG id (`export airflow`).",
            )
        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when built
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
        except yaml.YAMLError as exc:
            raise PipelineError(f"cannot parse {rel}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("stages"), dict):
            raise PipelineError(f"{rel}: expected a mapping with a 'stages' mapping at the top")
        extra = set(doc) - {"stages", "description"}
        if extra:
            raise PipelineError(
                f"{rel}: unknown top-level key(s) {sorted(extra)}; expected 'stages'"
            )
        for name, spec in doc["stages"].items():
            where = f"'stages.{name}' in {rel}"
            if not isinstance(name, str) or not STAGE_NAME.fullmatch(name):
                raise PipelineError(
                    f"{where}: {name!r} is not a stage name: use lower-case letters, digits "
                    "and '_', starting with a letter",
                    hint="A stage name becomes a command argument (`pipespec stage NAME`, "
                    "`dvc repro NAME`), a task id and a file name, so it cannot start with "
                    "'-' or hold spaces, dots or quotes.",
                )
            if name in RESERVED:
                raise PipelineError(f"{where}: the stage name '{name}' is reserved by pipespec")
            if name in seen:
                raise PipelineError(f"{where}: stage '{name}' is already declared in {seen[name]}")
            if not isinstance(spec, dict):
                raise PipelineError(f"{where}: expected a mapping with at least 'kind'")
            unknown = set(spec) - set(STAGE_KEYS)
            if unknown:
                key = sorted(unknown)[0]
                close = difflib.get_close_matches(key, STAGE_KEYS, n=1)
                raise PipelineError(
                    f"unknown key 'stages.{name}.{key}' in {rel}",
                    hint=(f"Did you mean '{close[0]}'? " if close else "")
                    + f"Stage keys: {', '.join(STAGE_KEYS)}",
                )
            if "kind" not in spec:
                raise PipelineError(
                    f"{where}: missing 'kind'", hint=f"Built-in kinds: {', '.join(BUILTIN)}"
                )
            seen[name] = rel
            raw.append((rel, name, spec))
    return _resolve(project, raw, params)


def _resolve(
    project: Project, raw: list[tuple[str, str, dict[str, Any]]], params: dict[str, Any] | None
) -> Pipeline:
    task = ((params or {}).get("dataset") or {}).get("task") if params is not None else None
    kinds: dict[str, StageKind] = {}
    outputs: dict[str, dict[str, str]] = {}
    passed: dict[str, set[str]] = {}  # stage -> the outputs it passes on unchanged
    for rel, name, spec in raw:
        try:
            kind = get_kind(str(spec["kind"]))
        except PipelineError as exc:
            raise PipelineError(
                f"'stages.{name}.kind' in {rel}: {exc.message}", hint=exc.hint
            ) from None
        kinds[name] = kind
        custom = spec.get("outputs") or {}
        if not isinstance(custom, dict):
            raise PipelineError(f"'stages.{name}.outputs' in {rel}: expected OUTPUT: path pairs")
        for out_name in custom:
            if out_name not in {o.name for o in kind.outputs}:
                raise PipelineError(
                    f"'stages.{name}.outputs.{out_name}' in {rel}: kind '{kind.name}' has no "
                    f"output '{out_name}'",
                    hint=f"Its outputs: {', '.join(o.name for o in kind.outputs) or 'none'}",
                )
        outputs[name] = {
            o.name: str(custom.get(o.name, o.for_stage(name)))
            for o in kind.outputs
            if task is None or o.active(task)
        }
        passed[name] = {
            o.name
            for o in kind.outputs
            if o.passes and params is not None and lookup(params, o.unless) in (None, "", MISSING)
        }

    resolved: dict[str, Stage] = {}
    for rel, name, spec in raw:
        kind = kinds[name]
        given = spec.get("inputs") or {}
        if not isinstance(given, dict):
            raise PipelineError(
                f"'stages.{name}.inputs' in {rel}: expected INPUT: STAGE.OUTPUT pairs"
            )
        missing = [i for i in kind.inputs if i not in given]
        if missing:
            raise PipelineError(
                f"'stages.{name}.inputs' in {rel}: kind '{kind.name}' needs input(s) "
                f"{', '.join(missing)}",
            )
        extra = [i for i in given if i not in kind.inputs]
        if extra and not kind.any_inputs:
            raise PipelineError(
                f"'stages.{name}.inputs.{extra[0]}' in {rel}: kind '{kind.name}' takes only "
                f"{', '.join(kind.inputs) or 'no inputs'}"
            )
        inputs: dict[str, str] = {}
        upstream: list[str] = []
        for input_name, ref in given.items():
            ref = str(ref)
            head, _, tail = ref.partition(".")
            if head in outputs and tail:
                if tail not in outputs[head]:
                    raise PipelineError(
                        f"'stages.{name}.inputs.{input_name}' in {rel}: stage '{head}' has no "
                        f"output '{tail}'",
                        hint=f"Its outputs: {', '.join(outputs[head]) or 'none'}",
                    )
                inputs[input_name] = outputs[head][tail]
                if head not in upstream:
                    upstream.append(head)
            elif "/" in ref or (project.root / ref).exists():
                inputs[input_name] = ref
            else:
                close = difflib.get_close_matches(head, list(outputs), n=1)
                raise PipelineError(
                    f"'stages.{name}.inputs.{input_name}' in {rel}: '{ref}' is neither "
                    "STAGE.OUTPUT of a declared stage nor an existing file",
                    hint=(f"Did you mean '{close[0]}.{tail}'? " if close else "")
                    + f"Stages: {', '.join(outputs)}",
                )
        resolved[name] = Stage(name, kind, inputs, tuple(upstream), outputs[name], rel)
    return Pipeline(_pass_on(_toposort(resolved, [name for _, name, _ in raw]), passed))


def _pass_on(stages: tuple[Stage, ...], passed: dict[str, set[str]]) -> tuple[Stage, ...]:
    """Outputs passed on unchanged are no files: a stage that takes one reads the passing
    stage's own input instead, counts that input's producer upstream too, and depends on
    the passing stage's first other output, so that it still runs after the check. A stage
    with no other output keeps writing the one it passes on."""
    producer = {path: s.name for s in stages for path in s.outputs.values()}
    source: dict[str, str] = {}  # path of an output passed on -> the path it stands for
    owner: dict[str, Stage] = {}
    out: list[Stage] = []
    for stage in stages:  # in dependency order: a passing stage comes before its takers
        inputs, upstream, after = dict(stage.inputs), list(stage.upstream), list(stage.after)
        for input_name, path in stage.inputs.items():
            if path in source:
                inputs[input_name] = source[path]
                up = producer.get(source[path])
                upstream += [up] if up and up not in upstream else []
                after += [f for f in owner[path].outputs.values() if f not in after][:1]
        outputs = dict(stage.outputs)
        gone = {n: p for n, p in outputs.items() if n in passed.get(stage.name, set())}
        if len(gone) == len(outputs):
            gone = {}
        for name, path in gone.items():
            del outputs[name]
            source[path] = inputs[stage.kind.output(name).passes]
        kept = replace(stage, inputs=inputs, upstream=tuple(upstream), outputs=outputs,
                       after=tuple(after))  # fmt: skip
        owner.update(dict.fromkeys(gone.values(), kept))
        out.append(kept)
    return tuple(out)


def _toposort(stages: dict[str, Stage], order: list[str]) -> tuple[Stage, ...]:
    """Stages in dependency order; ties keep file order. A cycle is an error."""
    done: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise PipelineError(f"pipeline has a cycle: {cycle} ({stages[name].source})")
        visiting.append(name)
        for up in stages[name].upstream:
            visit(up)
        visiting.pop()
        done.append(name)

    for name in order:
        visit(name)
    return tuple(stages[n] for n in done)
