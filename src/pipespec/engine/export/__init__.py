"""``pipespec export``: files for systems that run the pipeline or its model elsewhere.

Each target is a module here with ``export(ctx) -> {path: text}``: a pure function of the
committed composition (``params.yaml``), the pipeline and, for some, the bundle. Which targets
a project exported, with their options and files, is recorded in ``exports.yaml`` (committed),
so ``pipespec export --check`` regenerates exactly those and names every file that differs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from pipespec.core import atomic
from pipespec.core.errors import ConfigError, StaleError
from pipespec.engine.export.base import ExportContext, dump_yaml
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project

RECORD = "exports.yaml"
RECORD_HEADER = (
    "# The files `pipespec export` wrote, per target, with the options used.\n"
    "# `pipespec export --check` regenerates each target and names the files that differ.\n"
)
# target name -> module under pipespec.engine.export
TARGETS = {
    "github-actions": "github",
    "gitlab-ci": "gitlab",
    "airflow": "airflow",
    "alerts": "alerts",
    "docker": "docker",
    "kubernetes": "kubernetes",
    "kubernetes-training": "kubernetes_training",
}


@dataclass(frozen=True)
class Exported:
    """One target's files: path (project-relative) -> text."""

    target: str
    options: dict[str, Any]
    files: dict[str, str]


def render(project: Project, target: str, options: dict[str, Any] | None = None) -> Exported:
    """Generate ``target``'s files from the committed params.yaml; write nothing."""
    if target not in TARGETS:
        import difflib

        close = difflib.get_close_matches(target, list(TARGETS), n=1)
        raise ConfigError(
            f"unknown export target '{target}'",
            hint=(f"Did you mean '{close[0]}'? " if close else "")
            + f"Targets: {', '.join(TARGETS)}",
        )
    options = dict(options or {})
    module = importlib.import_module(f"pipespec.engine.export.{TARGETS[target]}")
    exporter: Callable[[ExportContext], dict[str, str]] = module.export
    params = _params(project)
    ctx = ExportContext(project, params, load_pipeline(project, params), options)
    return Exported(target, options, dict(sorted(exporter(ctx).items())))


def write(project: Project, exported: Exported) -> list[str]:
    """Write the target's files (only those that change) and record them; return those written."""
    changed = []
    for rel, text in exported.files.items():
        path = project.root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(path, text)
            changed.append(rel)
    record = read_record(project)
    for rel in (record.get(exported.target) or {}).get("files") or []:
        if rel not in exported.files and (project.root / rel).is_file():
            (project.root / rel).unlink()  # no longer part of this target's export
            changed.append(f"{rel} (removed)")
    record[exported.target] = {"options": exported.options, "files": list(exported.files)}
    text = RECORD_HEADER + dump_yaml({"targets": dict(sorted(record.items()))})
    path = project.root / RECORD
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic.write_text(path, text)
    return changed


def read_record(project: Project) -> dict[str, dict[str, Any]]:
    """The targets recorded in ``exports.yaml`` (empty when nothing was exported)."""
    path = project.root / RECORD
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {RECORD}: {exc}") from None
    targets = doc.get("targets") if isinstance(doc, dict) else None
    if not isinstance(targets, dict):
        raise ConfigError(f"{RECORD}: expected a 'targets' mapping", hint="Re-run the exports.")
    return {str(k): dict(v or {}) for k, v in targets.items()}


def check(project: Project) -> list[str]:
    """Regenerate every recorded target; raise StaleError naming each file that differs.

    Returns the files checked."""
    stale: list[str] = []
    commands: list[str] = []
    checked: list[str] = []
    for target, entry in read_record(project).items():
        exported = render(project, target, entry.get("options") or {})
        files = set(exported.files) | set(entry.get("files") or [])
        bad = []
        for rel in sorted(files):
            checked.append(rel)
            path = project.root / rel
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            if current != exported.files.get(rel):
                bad.append(rel + ("" if current is not None else " (missing)"))
        if bad:
            stale.extend(bad)
            commands.append(command(target, exported.options))
    if stale:
        raise StaleError(
            f"exported file{'s' if len(stale) > 1 else ''} stale: {', '.join(stale)} "
            f"({'does' if len(stale) == 1 else 'do'} not match params.yaml, pipelines/ "
            "and the bundle)",
            hint="Run " + " and ".join(f"`{c}`" for c in commands) + " to regenerate.",
        )
    return checked


def command(target: str, options: dict[str, Any]) -> str:
    """The command line that exports ``target`` with ``options``."""
    flags = [
        f"--{key.replace('_', '-')} {value}" for key, value in options.items() if value is not None
    ]
    return " ".join(["pipespec export", target, *flags])


def _params(project: Project) -> dict[str, Any]:
    if not project.params_file.is_file():
        raise StaleError("params.yaml is missing", hint="Run `pipespec compose` first.")
    try:
        params = yaml.safe_load(project.params_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse params.yaml: {exc}") from None
    return dict(params)
