"""The steps a pull-request workflow runs, shared by the GitHub and GitLab exports.

Order: the project's install (pinned to this pipespec), ``pipespec compose --check``, ``dvc
repro --pull --allow-missing`` and ``dvc push`` (or, with no DVC remote committed, ``dvc
repro`` from the cache the provider keeps), the gate stages again (a restored or pulled
gate report is re-checked against the bounds), then ``pipespec diff BASE workspace --md``
posted on the pull request. Checkout, Python and caching are the provider's own steps.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipespec import __version__
from pipespec.engine import dvc_repo
from pipespec.engine.export.base import ExportContext
from pipespec.engine.export.remote_run import check_remote

DIFF_FILE = "pipespec-diff.md"


@dataclass(frozen=True)
class Step:
    """One shell step: its name, its script, and the variables it reads from the provider."""

    name: str
    run: str
    env: dict[str, str] = field(default_factory=dict)


def install_command(ci: dict[str, Any]) -> str:
    """``ci.install``, or else a pip install of the pipespec version that exported the file."""
    return str(ci.get("install") or f"python -m pip install pipespec=={__version__}")


def has_remote(ctx: ExportContext) -> bool:
    """Whether the jobs have a DVC remote: ``ci.remote`` (which must be in the committed
    ``.dvc/config``) or a committed default remote. Without one they reproduce from DVC's
    cache alone (kept between runs by the provider's cache) and push nothing."""
    ci = ctx.group("ci")
    remote = ci.get("remote")
    if remote:
        check_remote(ctx.project, str(remote), "ci.remote")
        return True
    return dvc_repo.committed_remotes(ctx.project.root)[1] is not None


def default_branch(root: Path) -> str:
    """The branch pull requests target: origin's default (``origin/HEAD``), else a local
    ``main`` or ``master`` (exporting on a feature branch of a repository that was pushed,
    not cloned, has no ``origin/HEAD``), else the branch checked out, else ``main`` (what
    ``pipespec init`` creates)."""
    proc = subprocess.run(["git", "symbolic-ref", "--short", "refs/remotes/origin/HEAD"],
                          cwd=root, capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip().removeprefix("origin/")
    for name in ("main", "master"):
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"],
                               cwd=root, capture_output=True, text=True, check=False)  # fmt: skip
        if found.returncode == 0:
            return name
    proc = subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], cwd=root,
                          capture_output=True, text=True, check=False)  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "main"


def branches(ctx: ExportContext) -> list[str]:
    """``ci.branches``, or else the repository's default branch."""
    chosen = ctx.group("ci").get("branches")
    return [str(b) for b in chosen] if chosen is not None else [default_branch(ctx.project.root)]


def dvc_steps(ctx: ExportContext) -> list[Step]:
    """Install, freshness check, reproduce (with the remote when there is one), push, gate."""
    ci = ctx.group("ci")
    remote = ci.get("remote")
    steps = [
        Step("Install the project", install_command(ci)),
        Step("Check params.yaml and dvc.yaml are fresh", "pipespec compose --check"),
    ]
    if has_remote(ctx):
        repro = "dvc repro --pull --allow-missing"
        if remote:  # `dvc repro --pull` reads the default remote: make the configured one default
            repro = f"dvc remote default --local {shlex.quote(str(remote))}\n{repro}"
        push = "dvc push" + (f" -r {shlex.quote(str(remote))}" if remote else "")
        steps += [
            Step("Reproduce the pipeline, pulling what the remote has", repro),
            Step("Push the outputs to the DVC remote", push),
        ]
    else:
        steps.append(Step("Reproduce the pipeline (no DVC remote: from DVC's cache)", "dvc repro"))
    gates = [s.name for s in ctx.pipeline.stages if s.kind.name == "gate"]
    if gates:
        steps.append(Step("Gate", "\n".join(f"pipespec stage {shlex.quote(g)}" for g in gates)))
    return steps


def diff_script(base_var: str, post: str) -> str:
    """Write the Markdown diff of the base commit against the workspace (what this job just
    reproduced: HEAD's own metrics are whatever the author committed) to a file, then run
    ``post`` to publish it."""
    return f'pipespec diff "${base_var}" workspace --md > {DIFF_FILE}\n{post}'
