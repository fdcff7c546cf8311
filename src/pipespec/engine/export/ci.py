"""The steps a pull-request workflow runs, shared by the GitHub and GitLab exports.

Order: the project's install, ``pipespec compose --check``, ``dvc repro --pull
--allow-missing``, ``dvc push``, the gate stages again (a restored or pulled gate report is
re-checked against the bounds), then ``pipespec diff BASE workspace --md`` posted on the
pull request. Checkout, Python and caching are the provider's own steps.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from pipespec.engine.export.base import ExportContext

DIFF_FILE = "pipespec-diff.md"


@dataclass(frozen=True)
class Step:
    """One shell step: its name, its script, and the variables it reads from the provider."""

    name: str
    run: str
    env: dict[str, str] = field(default_factory=dict)


def dvc_steps(ctx: ExportContext) -> list[Step]:
    """Install, freshness check, reproduce with the remote, push, gate."""
    ci = ctx.group("ci")
    remote = ci.get("remote")
    repro = "dvc repro --pull --allow-missing"
    if remote:  # `dvc repro --pull` reads the default remote: make the configured one default
        repro = f"dvc remote default --local {shlex.quote(str(remote))}\n{repro}"
    push = "dvc push" + (f" -r {shlex.quote(str(remote))}" if remote else "")
    steps = [
        Step("Install the project", str(ci["install"])),
        Step("Check params.yaml and dvc.yaml are fresh", "pipespec compose --check"),
        Step("Reproduce the pipeline, pulling what the remote has", repro),
        Step("Push the outputs to the DVC remote", push),
    ]
    gates = [s.name for s in ctx.pipeline.stages if s.kind.name == "gate"]
    if gates:
        steps.append(Step("Gate", "\n".join(f"pipespec stage {shlex.quote(g)}" for g in gates)))
    return steps


def diff_script(base_var: str, post: str) -> str:
    """Write the Markdown diff of the base commit against the workspace (what this job just
    reproduced: HEAD's own metrics are whatever the author committed) to a file, then run
    ``post`` to publish it."""
    return f'pipespec diff "${base_var}" workspace --md > {DIFF_FILE}\n{post}'
