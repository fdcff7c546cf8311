"""``pipespec run``: compose + compile + ``dvc repro``, then a summary."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipespec.core.errors import ReproError
from pipespec.engine.dvc_repo import lock_entries, lock_text, repro
from pipespec.engine.generate import generate, is_fresh_fast, write
from pipespec.engine.pipeline import Pipeline, load_pipeline
from pipespec.engine.project import Project
from pipespec.engine.runner import run_command
from pipespec.engine.stage_process import ran_since


@dataclass
class RunResult:
    """What a run did: stages run, restored from DVC's run cache, or left as they were."""

    ran: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def prepare(project: Project, overrides: tuple[str, ...]) -> tuple[Pipeline | None, list[str]]:
    """Compose and compile unless the recorded state proves nothing changed."""
    if is_fresh_fast(project, overrides):
        return None, []
    generated = generate(project, overrides)
    return generated.pipeline, write(project, generated)


def run(
    project: Project,
    overrides: tuple[str, ...] = (),
    *,
    force: bool = False,
    dvc_args: tuple[str, ...] = (),
) -> RunResult:
    """Bring params.yaml and dvc.yaml up to date, then ``dvc repro``."""
    start = time.time()
    pipeline, changed = prepare(project, overrides)
    checked, params = _check_input_files(project)
    lock_before = lock_text(project)
    compute = params.get("compute") or {}
    with _dask_cluster(project, compute), _runner(project, compute):
        code = repro(project, force=force, args=dvc_args, hand_over=run_command)
    if code != 0:
        raise ReproError(
            f"dvc repro failed (exit {code}); the failing stage's message is above",
            hint="Fix the cause and run `pipespec run` again: finished stages are not run twice.",
        )
    pipeline = pipeline or checked
    ran = ran_since(project, start)
    lock_after = lock_text(project)
    # a stage restored from the run cache changed its lock entry without running; an
    # unchanged lock (a no-op run) needs no parsing
    before, after = (
        (lock_entries(lock_before), lock_entries(lock_after))
        if lock_after != lock_before
        else ({}, {})
    )
    result = RunResult(changed_files=changed, seconds=time.time() - start)
    for stage in pipeline.stages:
        if stage.name in ran:
            result.ran.append(stage.name)
        elif before.get(stage.name) != after.get(stage.name):
            result.restored.append(stage.name)
        else:
            result.skipped.append(stage.name)
        for path in stage.outputs_of("metrics"):
            with contextlib.suppress(OSError, ValueError):
                result.metrics[stage.name] = json.loads((project.root / path).read_text())
    return result


@contextlib.contextmanager
def _dask_cluster(project: Project, compute: dict[str, Any]) -> Iterator[None]:
    """With compute=dask and no compute.address, one LocalCluster serves every stage of the
    run (its address goes to the stages in PIPESPEC_DASK_ADDRESS) instead of one per stage."""
    import os

    if compute.get("backend") != "dask" or compute.get("address"):
        yield  # the local backend: the Dask helpers are not even imported
        return
    from pipespec.stages.cluster import ENV_ADDRESS, local_cluster

    if ENV_ADDRESS in os.environ:
        yield
        return
    with local_cluster(compute, project.root) as cluster:
        os.environ[ENV_ADDRESS] = cluster.scheduler_address
        try:
            yield
        finally:
            del os.environ[ENV_ADDRESS]


@contextlib.contextmanager
def _runner(project: Project, compute: dict[str, Any]) -> Iterator[None]:
    """The warm stage runner (engine/runner.py) for the local backend: stages fork from one
    process with their libraries imported instead of importing them each. PIPESPEC_RUNNER=0
    turns it off (every stage in its own process, as plain `dvc repro` runs them)."""
    import os

    if compute.get("backend", "local") != "local" or os.environ.get("PIPESPEC_RUNNER") == "0":
        yield
        return
    from pipespec.engine.runner import warm_runner

    with warm_runner(project.state_dir):
        yield


def _check_input_files(project: Project) -> tuple[Pipeline, dict[str, Any]]:
    """Files that params name (dataset.path, schema.path, ...) must exist before DVC looks
    for them, so the message names the key instead of DVC's bare 'No such file'. Returns the
    pipeline and the params it read."""
    from pathlib import Path

    from pipespec.core.errors import DataError
    from pipespec.engine.pipeline import lookup
    from pipespec.engine.stage_process import load_params

    params = load_params(project)
    pipeline = load_pipeline(project, params)
    for stage in pipeline.stages:
        for key in stage.kind.path_params:
            value = lookup(params, key)
            if not isinstance(value, str) or not value or value == "???":
                continue
            path = Path(value) if Path(value).is_absolute() else project.root / value
            if not path.exists():
                raise DataError(
                    f"{key}: file not found: {value} (read by stage '{stage.name}')",
                    hint="Fix the path in the config or on the command line "
                    f"(`pipespec run {key}=...`).",
                )
    return pipeline, params
