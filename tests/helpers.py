"""Helpers for the test suite: pipespec in-process or in a real subprocess, git and DVC."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# The shared datasets: $PIPESPEC_SHARED_DATA, else ../shared/data beside the repository (the
# same default as the dataset configs). The session fixture passes it on to pipespec.
SHARED_DATA = Path(os.environ.get("PIPESPEC_SHARED_DATA") or REPO.parent / "shared" / "data")
BIN = Path(sys.executable).parent
# Read at import, before the session fixture sets CI for the subprocesses' console width.
IN_CI = bool(os.environ.get("CI"))

# Small data so end-to-end runs stay fast: the stages' start-up dominates anyway.
SMALL = ("dataset.rows=3000", "model.num_boost_round=40")


def run_cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`pipespec ARGS` in a real subprocess, the way a user or DVC runs it."""
    proc = subprocess.run(
        [str(BIN / "pipespec"), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"pipespec {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@dataclass(frozen=True)
class MainResult:
    """What ``run_main`` saw: the exit code and the two streams, as a subprocess's would be."""

    returncode: int
    stdout: str
    stderr: str


def run_main(*args: str, cwd: Path, check: bool = True) -> MainResult:
    """`pipespec ARGS` in this process (``pipespec.cli.main.main``), in ``cwd``, with stdout
    and stderr captured: for commands that need no process of their own (parsing, composing,
    reading a project or a bundle). argparse's exits become the exit code; the rich consoles
    (cached in ``core/console.py``) are made anew so that they write to the captured streams."""
    from pipespec.cli.main import main
    from pipespec.core import console

    stdout, stderr = io.StringIO(), io.StringIO()
    console.console.cache_clear()
    console.out.cache_clear()
    try:
        with contextlib.chdir(cwd), redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, --version, a usage error
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        console.console.cache_clear()
        console.out.cache_clear()
    result = MainResult(code, stdout.getvalue(), stderr.getvalue())
    if check and code != 0:
        raise AssertionError(
            f"pipespec {' '.join(args)} exited {code}\n{result.stdout}\n{result.stderr}"
        )
    return result


def run_tool(*argv: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """git or dvc (from this venv) in a subprocess."""
    exe = str(BIN / argv[0]) if (BIN / argv[0]).exists() else argv[0]
    proc = subprocess.run([exe, *argv[1:]], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def commit_all(root: Path, message: str) -> None:
    run_tool("git", "add", "-A", cwd=root)
    run_tool("git", "commit", "-q", "-m", message, cwd=root)


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def lock_md5s(root: Path) -> dict[str, str]:
    """The md5 of every output in dvc.lock, by path: changes when a stage really re-ran."""
    lock = read_yaml(root / "dvc.lock")
    return {
        out["path"]: out.get("md5", "")
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def missing(what: str) -> NoReturn:
    """Stop a test that lacks data or a tool: in CI (env CI set) it fails, so that CI never
    passes by skipping; elsewhere it skips. ``what`` names the thing and where it was sought."""
    if IN_CI:
        pytest.fail(f"{what} (CI is set: a missing dependency fails the test)", pytrace=False)
    pytest.skip(what)


def shared(*parts: str) -> Path:
    """A file of the shared datasets (``SHARED_DATA``), or ``missing`` when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        missing(
            f"shared dataset not available: {path} is absent (shared data looked for in "
            f"{SHARED_DATA}; set PIPESPEC_SHARED_DATA to its folder)"
        )
    return path


def tool(name: str) -> str:
    """The path of an outside tool (this venv's first, then PATH), or ``missing``."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        missing(
            f"{name} is not installed (looked in {BIN} and on PATH): `make install` installs "
            "the Python tools, .ci/run the Debian ones"
        )
    return found


def copy_template_project(dest: Path) -> Path:
    """configs/ and pipelines/ of the packaged template, without git or DVC (unit tests)."""
    from pipespec.engine.scaffold import template_root

    dest.mkdir(parents=True, exist_ok=True)
    for name in ("configs", "pipelines"):
        shutil.copytree(template_root() / name, dest / name)
    return dest


def clone_trained(trained: Path, dest: Path) -> Path:
    """A git clone of a trained project with its outputs checked out from the original's DVC
    cache (shared, not copied: treat it as read-only), so only what a change touches re-runs."""
    run_tool("git", "clone", "-q", str(trained), str(dest), cwd=dest.parent)
    run_tool("dvc", "cache", "dir", "--local", str(trained / ".dvc" / "cache"), cwd=dest)
    run_tool("dvc", "checkout", "-q", cwd=dest)
    return dest


def gen(root: Path, tree: Mapping[str, Any]) -> Path:
    """Write a tree of files under ``root`` in one call, as DVC's ``tmp_dir.gen({...})``:
    a key is a relative path, a value is the file's text (``str``), bytes, a mapping or list
    written as YAML (for ``.yaml``/``.yml``) or JSON (otherwise), or a nested mapping for a
    folder when the key ends with ``/``. Returns ``root``."""
    import json

    for name, value in tree.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            gen(path, value)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bytes):
            path.write_bytes(value)
        elif isinstance(value, str):
            path.write_text(value, encoding="utf-8")
        elif path.suffix in (".yaml", ".yml"):
            path.write_text(yaml.safe_dump(value, sort_keys=False), encoding="utf-8")
        else:
            path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    return root
