"""DVC's experiment queue driven by pipespec: idle workers from an earlier run are stopped
before a run (the race that left `dvc exp run --run-all` waiting for ever), none are left
after it, and a queue whose workers keep dying ends in an error instead of a hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from helpers import commit_all, run_tool
from pipespec.core.errors import ReproError
from pipespec.engine.dvcqueue import live_workers, run_all
from pipespec.engine.project import Project

# a regression hangs: fail in minutes, not at the suite's 15-minute timeout
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPT = """\
import json, yaml
n = yaml.safe_load(open("params.yaml"))["n"]
json.dump({"double": 2 * n}, open("m.json", "w"))
"""
DVC_YAML = """\
stages:
  count:
    cmd: python count.py
    deps:
    - count.py
    params:
    - n
    metrics:
    - m.json:
        cache: false
"""


@pytest.fixture
def repo(tmp_path: Path) -> Project:
    """A tiny real git + DVC repository whose one stage takes well under a second."""
    root = tmp_path / "repo"
    root.mkdir()
    run_tool("git", "init", "-q", cwd=root)
    run_tool("dvc", "init", "-q", cwd=root)
    (root / "count.py").write_text(SCRIPT)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text("n: 1\n")
    run_tool("dvc", "repro", "-q", cwd=root)
    commit_all(root, "baseline")
    return Project(root)


def _queue(project: Project, name: str, n: int) -> None:
    run_tool("dvc", "exp", "run", "--queue", "--name", name, "-S", f"n={n}", cwd=project.root)


def _results(project: Project) -> dict[str, float]:
    rows = json.loads(run_tool("dvc", "exp", "show", "--json", cwd=project.root).stdout)
    out = {}
    for baseline in rows:
        for exp in baseline.get("experiments") or []:
            data = exp["revs"][0].get("data") or {}
            metrics = (data.get("metrics") or {}).get("m.json", {}).get("data", {})
            out[exp["name"]] = metrics.get("double")
    return out


def _wait_for(condition, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def test_idle_workers_from_an_earlier_run_do_not_stay_behind(repo: Project) -> None:
    # Idle workers (the queue is empty). Not through run_tool: captured pipes would stay open
    # until the workers end.
    subprocess.run(
        ["dvc", "queue", "start", "--jobs", "2"],
        cwd=repo.root,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: len(live_workers(repo)) == 2, 30)
    idle = live_workers(repo)
    _queue(repo, "first", 3)
    _queue(repo, "second", 5)
    run_all(repo, 2)
    assert _results(repo) == {"first": 6, "second": 10}
    assert not [pid for pid in idle if _running(pid, "queue-worker")]
    assert live_workers(repo) == []  # DVC's own would idle on for 10 s or more
    _queue(repo, "third", 7)
    run_all(repo, 1)  # the next run in a row starts its own worker again
    assert _results(repo)["third"] == 14
    assert live_workers(repo) == []


class Killer:
    """Kills this repository's queue workers as soon as they appear, ``limit`` of them."""

    def __init__(self, project: Project, limit: int) -> None:
        self.project, self.limit, self.killed = project, limit, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set() and len(self.killed) < self.limit:
            for pid in live_workers(self.project):
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
            time.sleep(0.02)

    def __enter__(self) -> Killer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_a_queue_whose_worker_died_is_started_again(repo: Project) -> None:
    """The hang CI met: DVC waits for a worker that is gone. pipespec starts one again."""
    _queue(repo, "survivor", 4)
    with Killer(repo, limit=1) as killer:
        run_all(repo, 1, grace=8)
    assert len(killer.killed) == 1
    assert _results(repo) == {"survivor": 8}
    assert live_workers(repo) == []


def test_a_queue_that_keeps_losing_its_workers_ends_in_an_error(repo: Project) -> None:
    _queue(repo, "doomed", 2)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    start = time.monotonic()
    with (
        Killer(repo, limit=100) as killer,
        pytest.raises(ReproError, match=r"lost its workers 4 times") as info,
    ):
        run_all(repo, 1, grace=8)
    assert len(killer.killed) >= 4
    assert time.monotonic() - start < 200
    assert "dvc queue status" in str(info.value)
    assert ".dvc/tmp/exps/celery" in str(info.value)
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not [pid for pid in left if _running(pid, "--run-all")]  # DVC's run was ended


def _running(pid: int, arg: str) -> bool:
    """Whether process ``pid`` runs (not a zombie) with ``arg`` on its command line."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and arg in proc.cmdline()
    except psutil.NoSuchProcess:
        return False
