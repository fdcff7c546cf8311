"""``release``, ``promote`` and ``registry``: argument errors and refusals in a project
without releases, in-process (releases run in ``tests/engine/test_registry_e2e.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_main, run_tool


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("release", "--version", "1.0.0", "--bump", "patch"),
         "argument --bump: not allowed with argument --version"),
        (("release", "--bump", "huge"), "argument --bump: invalid choice: 'huge'"),
        (("promote", "model", "v1.0.0"), "the following arguments are required: --to"),
        (("promote", "model"), "the following arguments are required: VERSION"),
    ],
)  # fmt: skip
def test_argument_errors_exit_2(fresh_project: Path, args: tuple[str, ...], message: str) -> None:
    result = run_main(*args, cwd=fresh_project, check=False)
    assert result.returncode == 2
    assert f"pipespec {args[0]}: error: {message}" in result.stderr


def test_registry_of_a_project_without_releases(fresh_project: Path) -> None:
    assert run_main("registry", cwd=fresh_project).stderr == (
        "no releases yet: `pipespec release` makes one\n"
    )
    assert '"artifacts": []' in run_main("registry", "--json", cwd=fresh_project).stdout


def test_refusals_are_exit_9_and_make_no_tag(fresh_project: Path) -> None:
    result = run_main("promote", "model", "v9.9.9", "--to", "prod", cwd=fresh_project,
                      check=False)  # fmt: skip
    assert result.returncode == 9
    assert "error: no version v9.9.9 of artifact 'model' (no tag model@v9.9.9)" in result.stderr
    result = run_main("release", cwd=fresh_project, check=False)  # nothing committed yet
    assert result.returncode == 9
    assert "error: the workspace has uncommitted changes: " in result.stderr
    assert "A release names a commit: commit (or stash) the changes" in result.stderr
    assert run_tool("git", "tag", "--list", cwd=fresh_project).stdout == ""
