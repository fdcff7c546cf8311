"""``pipespec init``: a new project that ``pipespec run`` runs at once."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from pipespec.core.atomic import write_text
from pipespec.core.errors import ConfigError, ReproError
from pipespec.engine import dvc_repo
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
# DVC's Hydra composition pointed at configs/, so `dvc exp run -S key=value` works.
DVC_HYDRA = {
    "hydra.enabled": "true",
    "hydra.config_dir": CONFIGS_DIR,
    "hydra.config_name": "config",
}
# How outputs go into DVC's cache (see dvc_repo.CACHE_TYPES: copy-on-write where the filesystem
# can, else a copy; never a link a hand edit could write through). Set only in a repository
# pipespec initialises: an existing one keeps its own.
DVC_CACHE = {"cache.type": dvc_repo.CACHE_TYPES}
# DVC's usage report: after every `dvc` command (and so after every `pipespec run`, whose
# `dvc repro` is DVC's own command line, in-process) DVC starts a detached `dvc daemon
# analytics` process that imports DVC again and posts the report: about 1.8 s of CPU and
# several seconds on a 2-core machine, competing with whatever runs next (the next run of
# an iteration, the next test). Off in the repositories pipespec initialises, visibly in
# .dvc/config (`dvc config core.analytics true` turns it back on).
DVC_CORE = {"core.analytics": "false"}


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
        _call(["git", "init", "-q", "--initial-branch", "main"], target)
    if dvc_repo.is_initialized(target):
        dvc_repo.set_config(target, DVC_HYDRA)
    else:
        dvc_repo.init(target)
        dvc_repo.set_config(target, {**DVC_CORE, **DVC_CACHE, **DVC_HYDRA})
    project = Project(target)
    write(project, generate(project))
    return project


def _call(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ReproError(f"`{' '.join(argv)}` failed in {cwd}: {proc.stderr.strip()}")
