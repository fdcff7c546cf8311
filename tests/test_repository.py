"""The repository is itself the example project: a fresh clone reproduces its dvc.lock."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers import BIN, REPO, missing, run_tool

pytestmark = pytest.mark.slow


def test_make_run_in_a_fresh_clone_reproduces_the_committed_lock(tmp_path: Path) -> None:
    if not (REPO / ".git").exists():
        missing(f"{REPO} is not a git checkout (no {REPO / '.git'})")
    clone = tmp_path / "clone"
    run_tool("git", "clone", "-q", str(REPO), str(clone), cwd=tmp_path)
    venv = BIN.parent
    # Reuse this test run's environment (-o: do not reinstall it) instead of building another.
    proc = subprocess.run(
        ["make", "-o", f"{venv}/.installed", "run", f"VENV={venv}"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every stage whose outputs are not in git runs (gate's report is a committed metrics file)
    ran = "ran: load, validate, split, featurize, train, package, evaluate, behavior"
    assert ran in proc.stderr
    run_tool("git", "diff", "--exit-code", "dvc.lock", cwd=clone)
    run_tool("git", "diff", "--exit-code", "metrics", cwd=clone)
    check = subprocess.run(
        [str(BIN / "pipespec"), "compose", "--check"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
