"""``pipespec init``: a new project that ``pipespec run`` runs at once."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from pipespec.core.atomic import write_text
from pipespec.core.errors import ConfigError, ReproError
from pipespec.engine.generate import generate, write
from pipespec.engine.project import CONFIGS_DIR, PIPELINES_DIR, Project

SCHEMAS_DIR = "schemas"  # pandera YAML schemas that configs/schema/*.yaml name
PRE_COMMIT = ".pre-commit-config.yaml"  # hooks: compose --check, export --check, ruff
GITIGNORE = """\
# pipespec
/.pipespec/
/configs/local/*
!/configs/local/.gitkeep
# Python
__pycache__/
/.venv/
"""


def template_root() -> Path:
    """The packaged example project (configs/ and pipelines/)."""
    return Path(str(resources.files("pipespec") / "templates" / "project"))


def init(target: Path) -> Project:
    """Create (or complete) a project in ``target``: git, DVC, configs, pipelines, params."""
    target = target.resolve()
    for name in (CONFIGS_DIR, PIPELINES_DIR):
        if (target / name).exists():
            raise ConfigError(
                f"{target / name} already exists: refusing to overwrite an existing project",
                hint="Pick an empty or new folder.",
            )
    target.mkdir(parents=True, exist_ok=True)
    src = template_root()
    shutil.copytree(src / CONFIGS_DIR, target / CONFIGS_DIR)
    shutil.copytree(src / PIPELINES_DIR, target / PIPELINES_DIR)
    if (src / SCHEMAS_DIR).is_dir() and not (target / SCHEMAS_DIR).exists():
        shutil.copytree(src / SCHEMAS_DIR, target / SCHEMAS_DIR)
    if not (target / PRE_COMMIT).exists():
        shutil.copyfile(src / PRE_COMMIT, target / PRE_COMMIT)
    gitignore = target / ".gitignore"
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if "/.pipespec/" not in existing:
        write_text(
            gitignore,
            existing + ("\n" if existing and not existing.endswith("\n") else "") + GITIGNORE,
        )
    if not (target / ".git").exists():
        _call(["git", "init", "-q"], target)
    if not (target / ".dvc").exists():
        _call(["dvc", "init", "-q"], target)
    enable_dvc_hydra(target)
    project = Project(target)
    write(project, generate(project))
    return project


def enable_dvc_hydra(root: Path) -> None:
    """Point DVC's Hydra composition at configs/, so `dvc exp run -S key=value` works."""
    for key, value in (
        ("hydra.enabled", "true"),
        ("hydra.config_dir", CONFIGS_DIR),
        ("hydra.config_name", "config"),
    ):
        _call(["dvc", "config", key, value], root)


def _call(argv: list[str], cwd: Path) -> None:
    import sys

    if argv[0] == "dvc":  # the DVC of this environment, whatever PATH says
        argv = [sys.executable, "-m", "dvc", *argv[1:]]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ReproError(f"`{' '.join(argv)}` failed in {cwd}: {proc.stderr.strip()}")
