"""``pipespec export github-actions``: ``.github/workflows/pipespec.yml``.

Least privilege by construction: actions pinned to full commit SHAs, ``permissions`` limited
to reading the code and writing the pull-request comment, ``persist-credentials: false``, and
event fields reach scripts only through ``env`` (never ``${{ }}`` inside ``run``).
"""

from __future__ import annotations

from typing import Any

from pipespec.engine.export.base import ExportContext, dump_yaml, header
from pipespec.engine.export.ci import DIFF_FILE, Step, diff_script, dvc_steps
from pipespec.engine.export.ci import branches as ci_branches

PATH = ".github/workflows/pipespec.yml"
# Full commit SHAs of the actions used, with the release each one is (zizmor checks the pin).
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"  # v7.0.1
SETUP_PYTHON = "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97"  # v7.0.0
CACHE = "actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae"  # v5.0.5
POST = f'gh pr comment "$PR_NUMBER" --edit-last --create-if-none --body-file {DIFF_FILE}'


def _run(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"name": step.name}
    if step.env:
        out["env"] = dict(step.env)
    out["run"] = step.run
    return out


def workflow(ctx: ExportContext) -> dict[str, Any]:
    """The workflow document."""
    ci = ctx.group("ci")
    steps: list[dict[str, Any]] = [
        {
            "name": "Check out with full history (pipespec diff reads the base commit)",
            "uses": CHECKOUT,
            "with": {"fetch-depth": 0, "persist-credentials": False},
        },
        {
            "name": "Set up Python",
            "uses": SETUP_PYTHON,
            "with": {"python-version": str(ci["python"])},
        },
    ]
    if ci.get("cache"):
        steps.append(
            {
                "name": "Cache pip downloads and DVC's cache",
                "uses": CACHE,
                "with": {
                    "path": "~/.cache/pip\n.dvc/cache\n",
                    "key": "pipespec-${{ runner.os }}-${{ hashFiles('dvc.lock') }}",
                    "restore-keys": "pipespec-${{ runner.os }}-\n",
                },
            }
        )
    steps.extend(_run(s) for s in dvc_steps(ctx))
    steps.append(
        _run(
            Step(
                "Post the params, metrics and stages diff on the pull request",
                diff_script("BASE_SHA", POST),
                {
                    "BASE_SHA": "${{ github.event.pull_request.base.sha }}",
                    "PR_NUMBER": "${{ github.event.pull_request.number }}",
                    "GH_REPO": "${{ github.repository }}",
                    "GH_TOKEN": "${{ github.token }}",
                },
            )
        )
    )
    branches = ci_branches(ctx)
    return {
        "name": "pipespec",
        "on": {"pull_request": {"branches": branches}} if branches else ["pull_request"],
        "permissions": {},
        "concurrency": {
            "group": "pipespec-${{ github.event.pull_request.number }}",
            "cancel-in-progress": True,
        },
        "jobs": {
            "pipeline": {
                "name": "Reproduce, gate and diff",
                "runs-on": str(ci["runner"]),
                "permissions": {"contents": "read", "pull-requests": "write"},
                "steps": steps,
            }
        },
    }


def export(ctx: ExportContext) -> dict[str, str]:
    text = dump_yaml(workflow(ctx)).replace(
        "pull-requests: write\n", "pull-requests: write # edit the diff comment (gh)\n", 1
    )
    return {PATH: header("github-actions") + text}
