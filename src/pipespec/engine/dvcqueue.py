"""DVC's experiment queue, run so that it cannot wait for ever.

``dvc exp run --run-all`` starts a celery worker only for the worker names it finds alive, and
an idle worker shuts itself down about 10 s after its queue empties. When a batch is queued
while the last batch's workers are going down, DVC sees them alive, starts none, and then
waits for ever for a task that no worker will take (treeverse/dvc#8165, #10398, #10428: a
search of several batches hit this in CI). So pipespec

1. asks the repository's workers to stop (SIGTERM: celery's warm shutdown) before and after
   each run, so that a run starts its own and none idle on after it, and
2. watches a running queue: when no worker has been alive for a while, it starts them again
   (``dvc queue start``), and after a few tries stops the run with an error that says where
   the workers' logs are.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pipespec.core.errors import ReproError
from pipespec.engine import dvc_repo
from pipespec.engine.project import Project

_POLL = 1.0  # seconds between looks at a running queue
_RESTARTS = 3  # worker restarts before a run is given up


def celery_dir(project: Project) -> Path:
    """Where DVC's queue keeps its workers' process files and logs."""
    return project.root / ".dvc" / "tmp" / "exps" / "celery"


def live_workers(project: Project) -> list[int]:
    """PIDs of the DVC queue workers of this repository that are running now: processes
    ``dvc exp queue-worker`` whose working directory is the repository (DVC starts them
    there). Looking at the processes themselves, not at DVC's process files, also finds a
    second worker of the same name and never takes another process that got a dead
    worker's PID."""
    import psutil

    root = os.path.realpath(project.root)
    pids = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if "queue-worker" not in cmdline or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.path.realpath(proc.cwd()) == root:
                pids.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(pids)


def stop_workers(project: Project, *, timeout: float = 30.0) -> bool:
    """Ask the repository's workers to stop and wait up to ``timeout`` for them to go.

    SIGTERM is celery's warm shutdown: a worker finishes the experiment it is running, then
    exits; nothing is killed. (``dvc queue stop`` would broadcast a shutdown that stays in the
    broker for names no worker has now, and stops the next worker of such a name as soon as it
    starts.) Returns whether they are gone."""
    pids = live_workers(project)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return _wait(lambda: not live_workers(project), timeout) if pids else True


def run_all(project: Project, jobs: int, *, grace: float = 20.0) -> None:
    """Run every queued experiment with up to ``jobs`` workers and wait for them.

    ``grace`` is how long the queue may go without a live worker (DVC takes a few seconds to
    start one) before pipespec starts them again.
    """
    stop_workers(project)
    proc = dvc_repo.start_run_all(project, jobs)
    restarts = 0
    last_seen = time.monotonic()
    try:
        while True:
            try:
                proc.wait(timeout=_POLL)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if live_workers(project):
                last_seen = now
                continue
            if now - last_seen < grace:
                continue
            if restarts == _RESTARTS:
                raise ReproError(
                    f"DVC's experiment queue lost its workers {restarts + 1} times; "
                    "the experiments left are still queued",
                    hint=f"See `dvc queue status` and the worker logs in "
                    f"{celery_dir(project).relative_to(project.root)}/; "
                    "`dvc queue remove --queued` clears the queue.",
                )
            restarts += 1
            dvc_repo.start_queue(project, jobs)
            last_seen = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stop_workers(project)


def _wait(done: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True
