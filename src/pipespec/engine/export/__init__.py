"""``pipespec export``: files for systems that run the pipeline or its model elsewhere.

Each target is a module here with ``export(ctx) -> {path: text}``: a pure function of the
committed composition (``params.yaml``), the pipeline and, for some, the bundle. Which targets
a project exported, with their options and files, is recorded in ``exports.yaml`` (committed),
so ``pipespec export --check`` regenerates exactly those and names every file that differs.

Confinement: every path an export writes, reads back or removes resolves inside the project
(symlinks resolved); ``exports.yaml`` records each file with the SHA-256 of the text it
wrote, and a file is removed only while it still has those bytes. A hand-edited or foreign
file is reported and kept, never deleted or overwritten unasked.
"""

from __future__ import annotations

import hashlib
import importlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from pipespec.core import atomic
from pipespec.core.errors import ConfigError, StaleError
from pipespec.core.value_checks import check_values
from pipespec.engine.compose import value_error
from pipespec.engine.export.base import ExportContext, dump_yaml
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project

RECORD = "exports.yaml"
RECORD_HEADER = (
    "# The files `pipespec export` wrote, per target, with the options used and the SHA-256\n"
    "# of each file's text (a file is removed on re-export only while it is unchanged).\n"
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
    """One target's files: path (project-relative) -> text, or bytes for a binary file (the
    Docker export's wheel), compared and hashed byte for byte."""

    target: str
    options: dict[str, Any]
    files: dict[str, str | bytes]


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
    exporter: Callable[[ExportContext], dict[str, str | bytes]] = module.export
    params = _params(project)
    ctx = ExportContext(project, params, load_pipeline(project, params), options)
    return Exported(target, options, dict(sorted(exporter(ctx).items())))


def write(project: Project, exported: Exported) -> list[str]:
    """Write the target's files (only those that change) and record them; return what was
    written, removed or kept.

    A file this target no longer writes is removed only when its bytes are still those
    recorded; otherwise it is kept and reported. An existing file that no export recorded
    (a hand-written DAG, a workflow of the user's own) is never overwritten: ConfigError."""
    record = read_record(project)
    ours = {rel for entry in record.values() for rel in entry["files"]}
    paths = {rel: inside(project, rel, f"{exported.target} export file") for rel in exported.files}
    for rel, path in paths.items():
        if (
            rel not in ours
            and path.is_file()
            and _read(path, exported.files[rel]) != (exported.files[rel])
        ):
            raise ConfigError(
                f"{rel} exists and was not written by `pipespec export {exported.target}`: "
                "not overwriting it",
                hint=f"Move it away (or delete it) and export again; {RECORD} lists the "
                "files pipespec wrote.",
            )
    changed = []
    for rel, text in exported.files.items():
        path = paths[rel]
        if not path.is_file() or _read(path, text) != text:
            if isinstance(text, bytes):
                with atomic.atomic_path(path) as tmp:
                    tmp.write_bytes(text)
            else:
                atomic.write_text(path, text)
            changed.append(rel)
    for rel, digest in record.get(exported.target, {}).get("files", {}).items():
        path = inside(project, rel, f"'{RECORD}' entry targets.{exported.target}.files")
        if rel in exported.files or not path.is_file():
            continue
        if digest is None or sha256(path.read_bytes()) != digest:
            changed.append(f"{rel} (kept: changed since pipespec exported it; remove it by hand)")
            continue
        atomic.remove(path)  # no longer part of this target's export
        changed.append(f"{rel} (removed)")
    record[exported.target] = {
        "options": exported.options,
        "files": {rel: sha256(_bytes(text)) for rel, text in exported.files.items()},
    }
    text = RECORD_HEADER + dump_yaml({"targets": dict(sorted(record.items()))})
    path = project.root / RECORD
    if not path.is_file() or _read(path) != text:
        atomic.write_text(path, text)
    return changed


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inside(project: Project, rel: str, what: str) -> Path:
    """``project.root / rel``, refused (ConfigError naming ``what``) unless it is a relative
    path that, with every symlink resolved, stays inside the project."""
    root = project.root.resolve()
    problem = None
    if not isinstance(rel, str) or not rel or "\0" in rel:
        problem = "is not a file path"
    elif PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
        problem = "leaves the project"
    else:
        resolved = (root / rel).resolve()
        if resolved == root or not resolved.is_relative_to(root):
            problem = f"resolves outside the project (to {resolved})"
    if problem:
        raise ConfigError(
            f"{what}: {rel!r} {problem}",
            hint="pipespec writes and removes files inside the project only.",
        )
    return root / rel


def _bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode()


def _read(path: Path, like: str | bytes | None = None) -> str | bytes | None:
    """The file's text, or its bytes when ``like`` (what the export writes there) is bytes."""
    try:
        if isinstance(like, bytes):
            return path.read_bytes()
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, IsADirectoryError):
        return None


def read_record(project: Project) -> dict[str, dict[str, Any]]:
    """The targets recorded in ``exports.yaml`` (empty when nothing was exported):
    ``{target: {"options": {...}, "files": {path: sha256 or None}}}``, every path checked to
    lie inside the project. An older record's plain list of files has no hashes (None)."""
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
    record: dict[str, dict[str, Any]] = {}
    for target, entry in targets.items():
        where = f"'{RECORD}' entry targets.{target}"
        if target not in TARGETS:
            raise ConfigError(
                f"{where}: unknown export target", hint=f"Targets: {', '.join(TARGETS)}"
            )
        entry = entry or {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with 'options' and 'files'")
        files = entry.get("files") or {}
        if isinstance(files, list):
            files = dict.fromkeys(files)
        if not isinstance(files, dict):
            raise ConfigError(f"{where}.files: expected a mapping of path: sha256")
        for rel in files:
            inside(project, rel, f"{where}.files")
        record[str(target)] = {
            "options": dict(entry.get("options") or {}),
            "files": {str(k): (None if v is None else str(v)) for k, v in files.items()},
        }
    return record


def check(project: Project) -> list[str]:
    """Regenerate every recorded target; raise StaleError naming each file that differs.

    Returns the files checked."""
    stale: list[str] = []
    commands: list[str] = []
    checked: list[str] = []
    for target, entry in read_record(project).items():
        exported = render(project, target, entry.get("options") or {})
        files = set(exported.files) | set(entry["files"])
        bad = []
        for rel in sorted(files):
            checked.append(rel)
            path = inside(project, rel, f"{target} export file")
            current = _read(path, exported.files.get(rel)) if path.is_file() else None
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
        f"--{shlex.quote(key.replace('_', '-'))} {shlex.quote(str(value))}"
        for key, value in options.items()
        if value is not None
    ]
    return " ".join(["pipespec export", target, *flags])


def _params(project: Project) -> dict[str, Any]:
    if not project.params_file.is_file():
        raise StaleError("params.yaml is missing", hint="Run `pipespec compose` first.")
    try:
        params = yaml.safe_load(project.params_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse params.yaml: {exc}") from None
    if not isinstance(params, dict):
        raise ConfigError("params.yaml: expected a mapping", hint="Run `pipespec compose`.")
    # params.yaml may be edited by hand or written by DVC's own composition: check again
    # every value that reaches an exported file before any of them is rendered.
    problems = check_values(params)
    if problems:
        raise value_error(problems, lambda path: "params.yaml")
    return dict(params)
