"""``pipespec diff``: what a change does, for a pull request.

Between two git revisions (default: HEAD and the workspace): the params that changed, the
metrics with their deltas and whether each got better or worse, and which stages the change
re-runs (a stage re-runs when a params key it reads, its definition in dvc.yaml, or an
upstream stage changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from pipespec.core.errors import ReproError
from pipespec.core.model_metrics import LOWER, NEITHER, direction
from pipespec.engine import dvc_repo
from pipespec.engine.compile import CHECK_STAGE, DEPS, METRICS, OUTS, PARAMS, PLOTS
from pipespec.engine.project import DVC_FILE, Project

WORKSPACE = "workspace"


@dataclass
class ParamChange:
    key: str
    old: Any
    new: Any


@dataclass
class MetricChange:
    file: str
    key: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        if isinstance(self.old, int | float) and isinstance(self.new, int | float):
            return self.new - self.old
        return None

    @property
    def verdict(self) -> str:
        """'better', 'worse', 'same' or '' (not comparable / not a score), by the metric's
        direction in ``core/model_metrics`` (a name it does not know: higher is better)."""
        delta = self.delta
        way = direction(self.key)
        if delta is None or way == NEITHER:
            return ""
        if delta == 0:
            return "same"
        return "better" if (delta < 0) == (way == LOWER) else "worse"


@dataclass
class DiffResult:
    a_rev: str
    b_rev: str
    params: list[ParamChange] = field(default_factory=list)
    metrics: list[MetricChange] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)


def diff(project: Project, a_rev: str = "HEAD", b_rev: str = WORKSPACE) -> DiffResult:
    """Compare two revisions of ``project`` (``workspace`` is the working tree)."""
    params, metrics = dvc_repo.diff(project, a_rev, b_rev)
    result = DiffResult(a_rev, b_rev)
    for file_changes in params.get("diff", {}).values():
        for key, change in sorted(file_changes.items()):
            result.params.append(ParamChange(key, change.get("old"), change.get("new")))
    for file, changes in sorted(metrics.get("diff", {}).items()):
        for key, change in sorted(changes.items()):
            result.metrics.append(MetricChange(file, key, change.get("old"), change.get("new")))
    old_dvc = _dvc_yaml(project, a_rev)
    new_dvc = _dvc_yaml(project, b_rev)
    result.stages = [s for s in new_dvc if s != CHECK_STAGE]
    result.reruns = rerun_stages(old_dvc, new_dvc, {p.key for p in result.params})
    return result


def rerun_stages(old: dict[str, Any], new: dict[str, Any], changed_keys: set[str]) -> list[str]:
    """Stages of ``new`` that a change re-runs, in dvc.yaml order."""
    producers = {
        out if isinstance(out, str) else next(iter(out)): name
        for name, stage in new.items()
        for kind in (OUTS, METRICS, PLOTS)
        for out in stage.get(kind, [])
    }
    reruns: list[str] = []
    for name, stage in new.items():
        if name == CHECK_STAGE:
            continue
        reads = [p if isinstance(p, str) else next(iter(p)) for p in stage.get(PARAMS, [])]
        touched = any(
            key == r or key.startswith(r + ".") or r.startswith(key + ".")
            for key in changed_keys
            for r in reads
        )
        upstream = any(producers.get(dep) in reruns for dep in stage.get(DEPS, []))
        if touched or upstream or old.get(name) != stage:
            reruns.append(name)
    return reruns


def _dvc_yaml(project: Project, rev: str) -> dict[str, Any]:
    """The stages of dvc.yaml at ``rev`` ({} when it has none)."""
    import subprocess

    if rev == WORKSPACE:
        text = project.dvc_file.read_text(encoding="utf-8") if project.dvc_file.is_file() else ""
    else:
        proc = subprocess.run(
            ["git", "show", f"{rev}:{DVC_FILE}"],
            cwd=project.root,
            capture_output=True,
            text=True,
            check=False,
        )
        if (
            proc.returncode != 0
            and "does not exist" not in proc.stderr
            and "exists on disk" not in proc.stderr
        ):
            raise ReproError(f"git cannot read revision '{rev}': {proc.stderr.strip()}")
        text = proc.stdout if proc.returncode == 0 else ""
    return (yaml.safe_load(text) or {}).get("stages", {})
