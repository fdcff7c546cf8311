"""Fixtures for the export tests: projects to export from, and the outside tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


AIRFLOW = "apache-airflow==3.3.2"
# KubernetesPodOperator, for the DAGs exported with orchestrator.image
PROVIDER = "apache-airflow-providers-cncf-kubernetes==10.25.0"


@pytest.fixture(scope="session")
def airflow_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with Apache Airflow 3 (kept apart: it pins many packages),
    installed once per session for every test that loads or runs an exported DAG."""
    venv = tmp_path_factory.mktemp("airflow") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "--no-compile", AIRFLOW, PROVIDER],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return venv
