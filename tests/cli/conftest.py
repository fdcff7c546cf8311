"""A project shared by the in-process CLI tests that only read it (``pipespec init``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_main


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new project (real git init + dvc init, not run), for tests that do not change it."""
    base = tmp_path_factory.mktemp("cli")
    run_main("init", str(base / "proj"), cwd=base)
    return base / "proj"
