"""Sweeps and searches as DVC experiments.

``pipespec run -m`` expands Hydra's whole sweep grammar (``a,b``, ``range()``, ``choice()``,
``glob()`` over a config group, ``+key`` additions), composes each combination with
pipespec itself (so every experiment's ``params.yaml`` carries its overrides), queues it as a
named DVC experiment (``dvc exp run --queue --no-hydra``), restores the workspace, and runs
the queue with DVC's workers. Combinations that do not compose are reported and skipped;
experiments that fail are reported with the reason from their log; neither stops the rest.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipespec.core.errors import ConfigError, PipespecError, ReproError
from pipespec.engine import dvc_repo
from pipespec.engine.dvcqueue import run_all
from pipespec.engine.generate import generate, save_state, write
from pipespec.engine.project import Project

_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+\-]")


@dataclass
class Trial:
    """One combination of a sweep: its overrides, DVC experiment name, outcome."""

    overrides: tuple[str, ...]
    name: str
    status: str = "queued"  # queued | success | failed | invalid
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def expand(project: Project, overrides: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every combination of the sweep overrides (fixed overrides repeat in each)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob, IntervalSweep
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(f"malformed override: {str(exc).splitlines()[0]}") from None
    choices: list[list[str]] = []
    for item in parsed:
        if not item.is_sweep_override():
            choices.append([str(item.input_line)])
            continue
        key = item.get_key_element()
        value = item.value()
        if isinstance(value, IntervalSweep):
            raise ConfigError(
                f"'{item.input_line}': interval() has no finite list of values to sweep",
                hint="Search intervals with a configs/hparams_search/ config (Optuna).",
            )
        if isinstance(value, Glob):
            group = str(item.key_or_group)
            folder = project.configs / group
            options = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
            values = value.filter(options)
            if not values:
                raise ConfigError(f"'{item.input_line}' matches no option in configs/{group}/")
        else:
            values = list(item.sweep_string_iterator())
        choices.append([f"{key}={v}" for v in values])
    return [tuple(combo) for combo in itertools.product(*choices)]


def experiment_name(overrides: tuple[str, ...]) -> str:
    """A DVC experiment name (a valid git ref) made of the overrides."""
    name = ",".join(_REF_UNSAFE.sub("_", o.lstrip("~")) for o in overrides) or "defaults"
    name = re.sub(r"\.{2,}", ".", name).strip(".")
    return name[:200]


def queue(project: Project, trials: list[Trial]) -> None:
    """Compose each trial into the workspace and queue it; restore the workspace after."""
    saved = {p: p.read_bytes() for p in (project.params_file, project.dvc_file) if p.exists()}
    from pipespec.engine.compose import read_overrides

    original = read_overrides(project.params_file.read_text(encoding="utf-8")) if saved else ()
    clashing = sorted({t.name for t in trials} & {r.name for r in list_experiments(project)})
    if clashing:  # a re-run of the same combination replaces its earlier experiment
        dvc_repo.remove_experiments(project, clashing)
    try:
        for trial in trials:
            try:
                write(project, generate(project, trial.overrides))
            except PipespecError as exc:
                trial.status, trial.reason = "invalid", str(exc)
                continue
            proc = dvc_repo.queue_experiment(project, trial.name)
            if proc.returncode != 0:
                trial.status, trial.reason = "invalid", _last_error(proc.stdout + proc.stderr)
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
        save_state(project, original or ())


def run_queue(project: Project, jobs: int) -> None:
    """Run every queued experiment with up to ``jobs`` DVC workers; wait for them."""
    run_all(project, jobs)


def collect(project: Project, trials: list[Trial]) -> None:
    """Fill in each trial's status, metrics and (if it failed) the reason from its log."""
    rows = dvc_repo.show_experiments(project)
    found: dict[str, dict[str, Any]] = {}
    for baseline in rows:
        for exp in baseline.get("experiments") or []:
            rev = (exp.get("revs") or [{}])[0]
            found[exp.get("name") or rev.get("name")] = {
                "state": (exp.get("executor") or {}).get("state") or "success",
                "metrics": flatten_metrics((rev.get("data") or {}).get("metrics") or {}),
                "error": rev.get("error"),
            }
    for trial in trials:
        if trial.status == "invalid":
            continue
        info = found.get(trial.name)
        if info and info["state"] == "success" and info["metrics"]:
            trial.status, trial.metrics = "success", info["metrics"]
        else:
            trial.status = "failed"
            logs = dvc_repo.queue_logs(project, trial.name)
            trial.reason = _last_error(logs) or "failed (see `dvc queue logs`)"


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """``{"metrics/evaluate.json": {"data": {"test": {"auc": x}}}}`` -> ``{"test.auc": x}``
    (when two files share a key, the first file's value is kept)."""
    out: dict[str, Any] = {}
    for data in metrics.values():
        for key, value in flatten((data or {}).get("data") or {}).items():
            out.setdefault(key, value)
    return out


def flatten(tree: Any, prefix: str = "", *, keep_empty: bool = False) -> dict[str, Any]:
    """Nested dicts as dotted keys; with ``keep_empty`` an empty dict is kept as a value."""
    if not isinstance(tree, dict) or (keep_empty and prefix and not tree):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key), keep_empty=keep_empty))
    return out


def sweep(project: Project, overrides: tuple[str, ...], jobs: int) -> list[Trial]:
    """Run every combination of ``overrides`` as a DVC experiment."""
    combos = expand(project, overrides)
    varying = [i for i in range(len(overrides)) if len({c[i] for c in combos}) > 1]
    trials = [
        Trial(combo, experiment_name(tuple(combo[i] for i in varying) or combo)) for combo in combos
    ]
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise ConfigError("two combinations of the sweep give the same experiment name")
    queue(project, trials)
    if any(t.status == "queued" for t in trials):
        run_queue(project, jobs)
        collect(project, trials)
    return trials


def _last_error(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:") and "dvc repro failed" not in line:
            return line.removeprefix("error:").strip()
    for line in reversed(lines):
        if line.startswith("ERROR"):
            return line
    return lines[-1] if lines else ""


@dataclass
class ExperimentRow:
    name: str
    rev: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    state: str


def list_experiments(project: Project) -> list[ExperimentRow]:
    """The baseline and its experiments, from ``dvc exp show --json``."""
    data = dvc_repo.show_experiments(project)
    rows: list[ExperimentRow] = []
    for baseline in data:
        if baseline.get("rev") == "workspace":
            continue
        rows.append(_row(baseline, baseline.get("name") or baseline["rev"][:7], "baseline"))
        for exp in baseline.get("experiments") or []:
            rev = (exp.get("revs") or [{}])[0]
            state = (exp.get("executor") or {}).get("state") or "success"
            rows.append(_row(rev, exp.get("name") or rev.get("name") or "?", state))
    return rows


def _row(node: dict[str, Any], name: str, state: str) -> ExperimentRow:
    data = node.get("data") or {}
    tree = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    params = flatten(tree, keep_empty=True)
    return ExperimentRow(
        name,
        str(node.get("rev", ""))[:7],
        params,
        flatten_metrics(data.get("metrics") or {}),
        state,
    )


def differing_params(rows: list[ExperimentRow]) -> list[str]:
    keys = sorted({k for r in rows for k in r.params})
    return [k for k in keys if len({json.dumps(r.params.get(k), sort_keys=True) for r in rows}) > 1]


def apply_experiment(project: Project, name: str) -> tuple[str, ...]:
    """Bring experiment ``name``'s params (and results) into the workspace."""
    from pipespec.engine.compose import read_overrides

    known = {r.name for r in list_experiments(project)}
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, sorted(known), n=1)
        raise ConfigError(
            f"no experiment named '{name}'",
            hint=(f"Did you mean '{close[0]}'? " if close else "")
            + "List them with `pipespec exp show`.",
        )
    proc = dvc_repo.apply_experiment(project, name)
    if proc.returncode != 0:
        raise ReproError(f"dvc exp apply {name} failed: {_last_error(proc.stdout + proc.stderr)}")
    overrides = read_overrides(project.params_file.read_text(encoding="utf-8")) or ()
    save_state(project, overrides)
    return overrides
