"""``pipespec export gitlab-ci``: ``.gitlab-ci.yml``, a merge-request pipeline.

The same steps as the GitHub workflow. The diff is kept as a job artifact and, when ``glab``
and a token (``GITLAB_TOKEN``) are available, posted as a merge-request note.
"""

from __future__ import annotations

from typing import Any

from pipespec.engine.export.base import ExportContext, dump_yaml, header
from pipespec.engine.export.ci import DIFF_FILE, diff_script, dvc_steps

PATH = ".gitlab-ci.yml"
POST = (
    'if command -v glab >/dev/null && [ -n "${GITLAB_TOKEN:-}" ]; then\n'
    f'  glab mr note "$CI_MERGE_REQUEST_IID" --unique --message "$(cat {DIFF_FILE})"\n'
    "fi"
)


def pipeline(ctx: ExportContext) -> dict[str, Any]:
    """The ``.gitlab-ci.yml`` document."""
    ci = ctx.group("ci")
    job: dict[str, Any] = {
        "stage": "test",
        "image": str(ci["image"]),
        "rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}],
        "variables": {
            "GIT_DEPTH": "0",  # full history: pipespec diff reads the base commit
            "PIP_CACHE_DIR": "$CI_PROJECT_DIR/.cache/pip",
        },
    }
    if ci.get("cache"):
        job["cache"] = {
            "key": {"files": ["dvc.lock"]},
            "paths": [".cache/pip", ".dvc/cache"],
        }
    script = [s.run for s in dvc_steps(ctx)]
    script.append(diff_script("CI_MERGE_REQUEST_DIFF_BASE_SHA", POST))
    job["script"] = script
    job["artifacts"] = {"when": "always", "paths": [DIFF_FILE], "expose_as": "pipespec diff"}
    return {"stages": ["test"], "pipespec": job}


def export(ctx: ExportContext) -> dict[str, str]:
    return {PATH: header("gitlab-ci") + dump_yaml(pipeline(ctx))}
