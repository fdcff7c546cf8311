"""Fixtures for the export tests: projects to export from, and the outside tools."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import copy_template_project
from helpers import tool as find_tool


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The template project with params.yaml and dvc.yaml composed (no git, no run)."""
    from pipespec.engine.generate import generate, write
    from pipespec.engine.project import Project

    root = copy_template_project(tmp_path / "proj")
    write(Project(root), generate(Project(root)))
    return root


@pytest.fixture
def bundled_project(trained_project: Path, tmp_path: Path) -> Path:
    """A copy of the session's trained project (it has a bundle), free to export into."""
    root = tmp_path / "trained"
    shutil.copytree(trained_project, root, symlinks=True, ignore=shutil.ignore_patterns("cache"))
    return root


@pytest.fixture
def tool() -> Callable[[str], str]:
    """The path of an outside tool (``helpers.tool``: a failure in CI when it is missing)."""
    return find_tool
