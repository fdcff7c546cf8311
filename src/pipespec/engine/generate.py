"""Compose + compile, write the results atomically, and check them for staleness.

``.pipespec/state.json`` (git-ignored) remembers a digest of the sources and of the files
written, so ``pipespec run`` with unchanged configs and overrides, and the ``configs``
check stage, skip Hydra entirely (the fast path); any doubt falls back to a full compose.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipespec.core import atomic
from pipespec.core.errors import ConfigError, StaleError
from pipespec.core.value_checks import check_values
from pipespec.engine.compile import STAMP, compile_stages, render
from pipespec.engine.compose import Composition, compose, read_overrides, value_error
from pipespec.engine.pipeline import Pipeline, load_pipeline
from pipespec.engine.project import Project

STATE_FILE = "state.json"
STAMP_TEXT = "params.yaml and dvc.yaml match configs/ and pipelines/\n"


@dataclass(frozen=True)
class Generated:
    """What ``pipespec compose`` writes: params.yaml and dvc.yaml texts."""

    composition: Composition
    pipeline: Pipeline
    dvc_text: str

    @property
    def params_text(self) -> str:
        return self.composition.text


def generate(project: Project, overrides: tuple[str, ...] = ()) -> Generated:
    """Compose the configs and compile the pipelines; write nothing."""
    composition = compose(project, overrides)
    pipeline = load_pipeline(project, composition.params)
    dvc_text = render(compile_stages(project, pipeline, composition.params))
    return Generated(composition, pipeline, dvc_text)


def write(project: Project, generated: Generated) -> list[str]:
    """Write params.yaml and dvc.yaml (only those that change); return the changed names."""
    changed = []
    for path, text in (
        (project.params_file, generated.params_text),
        (project.dvc_file, generated.dvc_text),
    ):
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic.write_text(path, text)
            changed.append(project.rel(path))
    if project.dvc_file.name in {Path(c).name for c in changed}:
        remove_unused_outputs(project, generated.pipeline)
    save_state(project, generated.composition.overrides)
    return changed


def remove_unused_outputs(project: Project, pipeline: Pipeline) -> list[str]:
    """Delete the files a stage declares but no longer writes for the composition: plots
    and metrics of another task (a regression model has no ROC curve), left behind, would
    show in ``git status`` and ``dvc plots show``; a table now passed on unchanged (validate
    without a schema) would be a stale copy of its input. Only regular files inside the
    project that the pipeline's own declarations name are removed; other DVC-cached outputs
    are DVC's to manage."""
    every = load_pipeline(project)
    kept = {path for stage in pipeline.stages for _, path in stage.declared_outputs()}
    root = project.root.resolve()
    removed = []
    for stage in every.stages:
        for output, rel in stage.declared_outputs():
            if (output.type == "out" and not output.passes) or rel in kept:
                continue
            path = project.root / rel
            if path.is_symlink() or not path.is_file() or root not in path.resolve().parents:
                continue
            path.unlink()
            removed.append(rel)
    if removed:
        from pipespec.core.console import console

        console().print(f"removed outputs that no longer apply: {', '.join(sorted(removed))}")
    return removed


def sources_digest(project: Project) -> str:
    """A digest of every file under configs/ and pipelines/ and the pipespec version."""
    from pipespec import __version__

    h = hashlib.sha256(__version__.encode())
    for folder in (project.configs, project.pipelines):
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                h.update(project.rel(path).encode() + b"\0")
                with open(path, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _file_digest(path: os.PathLike[str] | str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except FileNotFoundError:
        return None


def _current_state(project: Project, overrides: tuple[str, ...]) -> dict[str, Any]:
    return {
        "sources": sources_digest(project),
        "overrides": list(overrides),
        "params": _file_digest(project.params_file),
        "dvc": _file_digest(project.dvc_file),
    }


def save_state(project: Project, overrides: tuple[str, ...]) -> None:
    """Record that params.yaml and dvc.yaml are fresh for these sources and overrides."""
    atomic.write_json(project.state_dir / STATE_FILE, _current_state(project, overrides))


def is_fresh_fast(project: Project, overrides: tuple[str, ...] | None = None) -> bool:
    """True when the recorded state proves the files fresh without composing."""
    try:
        state = json.loads((project.state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    wanted = tuple(state.get("overrides", [])) if overrides is None else overrides
    return bool(state == _current_state(project, wanted))


def check(project: Project, *, stamp: bool = False) -> None:
    """Raise StaleError naming each stale file and the command that regenerates it."""
    if is_fresh_fast(project):
        _stamp(project, stamp)
        return
    if not project.params_file.is_file():
        raise StaleError(
            "params.yaml is missing",
            hint="Run `pipespec compose` (or `pipespec run`) to write it.",
        )
    params_text = project.params_file.read_text(encoding="utf-8")
    overrides = read_overrides(params_text)
    stale: list[str] = []
    if overrides is None:
        # Written by DVC's own Hydra composition (`dvc exp run -S ...`), which composes from
        # the current configs every time and records no overrides: trust its params once
        # their values pass the checks composition runs, and check that dvc.yaml compiles
        # from them.
        try:
            params = yaml.safe_load(params_text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse params.yaml: {exc}") from None
        problems = check_values(params)
        if problems:
            raise value_error(problems, lambda path: "params.yaml (composed by DVC)")
        expected_dvc = render(compile_stages(project, load_pipeline(project, params), params))
        command = "pipespec compose"
    else:
        generated = generate(project, overrides)
        if generated.params_text != params_text:
            stale.append("params.yaml")
        expected_dvc = generated.dvc_text
        command = " ".join(["pipespec compose", *(_quote(o) for o in overrides)])
    current_dvc = (
        project.dvc_file.read_text(encoding="utf-8") if project.dvc_file.is_file() else None
    )
    if current_dvc != expected_dvc:
        stale.append("dvc.yaml")
    if stale:
        raise StaleError(
            f"{' and '.join(stale)} {'is' if len(stale) == 1 else 'are'} stale: "
            f"{'it does' if len(stale) == 1 else 'they do'} not match configs/ and pipelines/",
            hint=f"Run `{command}` to regenerate (then `dvc repro`), or `pipespec run` to do both.",
        )
    if overrides is not None:
        save_state(project, overrides)
    _stamp(project, stamp)


UP_TO_DATE = "params.yaml and dvc.yaml are up to date"


def check_and_stamp(project: Project) -> None:
    """What DVC's ``configs`` stage runs (``pipespec compose --check --stamp``): the check,
    the stamp its downstream stages depend on, and the line that says so."""
    from pipespec.core.console import console

    check(project, stamp=True)
    console().print(f"[green]{UP_TO_DATE}[/]")


def _stamp(project: Project, stamp: bool) -> None:
    if stamp:
        atomic.write_text(project.root / STAMP, STAMP_TEXT)


def _quote(item: str) -> str:
    import shlex

    return shlex.quote(item)
