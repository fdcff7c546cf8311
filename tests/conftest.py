"""Shared fixtures: real git, real DVC and real LightGBM in tmp_path workspaces."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import BIN, SHARED_DATA, SMALL, commit_all, run_cli, run_main


@pytest.fixture(autouse=True, scope="session")
def _environment() -> Iterator[None]:
    """The venv's `pipespec` and `dvc` first on PATH (DVC runs `pipespec stage ...`) and a
    git identity, without touching the user's global git config."""
    saved = dict(os.environ)
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    for key, value in {
        "GIT_AUTHOR_NAME": "pipespec tests",
        "GIT_AUTHOR_EMAIL": "tests@pipespec.invalid",
        "GIT_COMMITTER_NAME": "pipespec tests",
        "GIT_COMMITTER_EMAIL": "tests@pipespec.invalid",
        "DVC_NO_ANALYTICS": "1",
        "PIPESPEC_SHARED_DATA": str(SHARED_DATA),
        "CI": os.environ.get("CI", "true"),
    }.items():
        os.environ[key] = value
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def new_project(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a fresh project made by `pipespec init` (real git init + dvc init), in-process."""

    def make(name: str = "proj") -> Path:
        root = tmp_path / name
        run_main("init", str(root), cwd=tmp_path)
        return root

    return make


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project, run once, committed: for tests that only read it."""
    base = tmp_path_factory.mktemp("trained")
    root = base / "proj"
    run_main("init", str(root), cwd=base)
    run_cli("run", *SMALL, cwd=root)  # DVC runs each stage in its own process
    commit_all(root, "trained")
    return root
