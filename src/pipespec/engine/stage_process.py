"""Run one stage from ``params.yaml``: what ``pipespec stage NAME`` (DVC's cmd) does."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

import yaml

from pipespec.core import atomic
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, PipespecError, StageError
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project
from pipespec.stages import parquet
from pipespec.stages.context import ParamsView, StageContext
from pipespec.stages.kinds import load_entry

RUNS_DIR = "runs"


def load_params(project: Project) -> dict[str, Any]:
    """``params.yaml`` as plain data (C loader when available)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = project.params_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("params.yaml is missing", hint="Run `pipespec compose`.") from None
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse params.yaml: {exc}") from None
    return data or {}


def run_stage(project: Project, name: str) -> float:
    """Run stage ``name``; return its wall time in seconds."""
    params = load_params(project)
    stage = load_pipeline(project, params).get(name)
    ctx = StageContext(
        name=name,
        params=ParamsView(params, stage.kind.reads, name),
        inputs={k: project.root / v for k, v in stage.inputs.items()},
        outputs={k: project.root / v for k, v in stage.outputs.items()},
        root=project.root,
        compute=dict(params.get("compute") or {}),
    )
    for path in ctx.outputs.values():  # its folder, and no temp file left by a killed run
        atomic.prepare_output(path)
    _terminate_cleanly()
    console().print(f"[bold]stage[/] {name} [dim]({stage.kind.name})[/]")
    start = time.perf_counter()
    func = load_entry(stage.kind)
    parquet.take_written()  # what an earlier stage in this process wrote is not this one's
    gc.freeze()  # see below
    try:
        func(ctx)
    except PipespecError as exc:
        if not exc.message.startswith(f"stage '{name}'"):
            exc.message = f"stage '{name}': {exc.message}"
        raise
    except Exception as exc:  # a bug or a library error: say which stage, keep the cause
        raise StageError(
            f"stage '{name}' ({stage.kind.name}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        # The objects the process held before the stage (in a fork of the warm runner, the
        # imported libraries') are out of the collector's reach while it runs: a full
        # collection would walk them all and write to every page holding one (copy-on-write
        # after the fork), 0.1-0.3 s of CPU in a 1M-row package stage for no garbage.
        # Unfrozen afterwards, so an in-process caller's collector sees them again.
        gc.unfreeze()
    elapsed = time.perf_counter() - start
    hashes = os.environ.get(parquet.HASHES_ENV)
    if hashes:  # for `pipespec run`'s DVC: the tables' MD5, so DVC need not read them again
        atomic.write_json(Path(hashes), parquet.take_written())
    mark_ran(project, name)
    console().print(f"  [green]done[/] in {elapsed:.1f}s")
    return elapsed


def _terminate_cleanly() -> None:
    """Turn SIGTERM (what DVC and schedulers send) into an exception, so that temp files
    are removed by the atomic writers' cleanup instead of being left behind."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def mark_ran(project: Project, name: str) -> None:
    """Leave a marker that ``pipespec run`` reads to tell ran stages from skipped ones."""
    folder = project.state_dir / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"{time.time()}\n", encoding="utf-8")


def ran_since(project: Project, since: float) -> set[str]:
    folder = project.state_dir / RUNS_DIR
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if _stamp(p) >= since}


def _stamp(path: Path) -> float:
    try:
        return float(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0.0
