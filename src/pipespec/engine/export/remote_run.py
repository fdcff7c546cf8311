"""How a task runs its stages in a checkout of its own, sharing artifacts only through DVC.

The Kubernetes training Jobs and the Airflow tasks (bash or pod) run the same script:

1. ``dvc repro --pull STAGE...``: the stages upstream, which other tasks ran, are restored
   from DVC's run cache (their ``dvc.lock`` entries and every output, ``cache: false``
   metrics and plots included: DVC's run cache keeps a copy of those), pulled from the
   remote; then the task's own stages run.
2. ``dvc push --run-cache`` and ``pipespec push-run-cache``: the outputs, the run-cache
   entries and the objects they name go to the remote, where the next task (or ``dvc repro
   --pull`` on a laptop) finds them. (DVC's own push leaves out the run cache's copies of
   ``cache: false`` outputs, so a later checkout would find the entry and re-run the stage.)

So no task needs another's checkout: a fresh clone of the commit and the DVC remote are
enough, and a stage whose inputs are already in the checkout (a shared checkout) just runs.
The remote must be in the committed ``.dvc/config``: a fresh clone has nothing else.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pipespec.core.errors import ConfigError
from pipespec.engine import dvc_repo
from pipespec.engine.project import Project

DVC = "dvc --wait-for-lock"  # tasks that share a checkout wait for DVC's lock


def check_remote(project: Project, remote: str | None, key: str) -> None:
    """Refuse an export whose tasks would find no DVC remote in a fresh clone."""
    names, default = dvc_repo.committed_remotes(project.root)
    if remote and remote not in names:
        raise ConfigError(
            f"{key}: DVC remote '{remote}' is not in .dvc/config"
            + (f" (remotes: {', '.join(names)})" if names else ""),
            hint=f"Add it with `dvc remote add {remote} URL` and commit .dvc/config, "
            f"or set {key} to one of the remotes.",
        )
    if not remote and not default:
        raise ConfigError(
            f"{key} is null and .dvc/config has no default DVC remote: the tasks, each in a "
            "checkout of its own, share artifacts only through one",
            hint="Add one with `dvc remote add -d NAME URL` (an S3, GCS, SSH or shared "
            f"folder URL) and commit .dvc/config, or name one in {key}.",
        )


def script(stages: Sequence[str], remote: str | None) -> str:
    """The shell script that runs ``stages`` in a checkout, through the DVC remote."""
    targets = " ".join(shlex.quote(s) for s in stages)
    lines = ["set -euo pipefail"]
    if remote:  # `dvc repro --pull` reads the default remote: make the configured one default
        lines.append(f"dvc remote default --local {shlex.quote(remote)}")
    lines.append(f"{DVC} repro --pull {targets}")
    lines.append(f"{DVC} push --run-cache")
    # what `dvc push --run-cache` leaves out: the run cache's copies of `cache: false` outputs
    lines.append("pipespec push-run-cache")
    return "\n".join(lines)
