"""Where a project's files live. Everything the engine reads or writes is named here."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pipespec.core.errors import ConfigError

CONFIGS_DIR = "configs"
PIPELINES_DIR = "pipelines"
PRIMARY_CONFIG = "config"
PARAMS_FILE = "params.yaml"
DVC_FILE = "dvc.yaml"
STATE_DIR = ".pipespec"


def tool_path(path: str | None = None) -> str:
    """``path`` (PATH by default) with this environment's scripts first, so that the
    ``pipespec`` in DVC stage commands and the ``dvc`` that DVC's queue starts its workers with
    are this environment's, also when its venv is used without being activated."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "") if path is None else path
    if path.split(os.pathsep)[0] == scripts:
        return path
    return os.pathsep.join(filter(None, (scripts, path)))


@dataclass(frozen=True)
class Project:
    """A pipespec project: a folder with ``configs/config.yaml`` and ``pipelines/``."""

    root: Path

    @property
    def configs(self) -> Path:
        return self.root / CONFIGS_DIR

    @property
    def pipelines(self) -> Path:
        return self.root / PIPELINES_DIR

    @property
    def params_file(self) -> Path:
        return self.root / PARAMS_FILE

    @property
    def dvc_file(self) -> Path:
        return self.root / DVC_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def rel(self, path: Path | str) -> str:
        """``path`` relative to the project root, with forward slashes."""
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.relative_to(self.root)
            except ValueError:
                return p.as_posix()
        return p.as_posix()

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None) -> Project:
        """The project containing ``start`` (default: the working directory)."""
        here = Path(start or os.getcwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIGS_DIR / f"{PRIMARY_CONFIG}.yaml").is_file():
                return cls(folder)
        raise ConfigError(
            f"no pipespec project here: no {CONFIGS_DIR}/{PRIMARY_CONFIG}.yaml in {here} "
            "or any parent folder",
            hint="Create one with `pipespec init DIR`, or cd into a project.",
        )
