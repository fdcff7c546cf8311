"""``pipespec exp``: its actions and error paths, in-process (experiments themselves run in
``tests/engine/test_experiments_e2e.py``)."""

from __future__ import annotations

from pathlib import Path

from helpers import run_main


def test_exp_needs_an_action(fresh_project: Path) -> None:
    result = run_main("exp", cwd=fresh_project, check=False)
    assert result.returncode == 2
    assert "the following arguments are required: ACTION" in result.stderr


def test_exp_show_of_a_project_without_experiments(fresh_project: Path) -> None:
    result = run_main("exp", "show", "--md", cwd=fresh_project)
    assert result.stdout.startswith("| experiment | state |")


def test_exp_apply_of_an_unknown_experiment_names_it(fresh_project: Path) -> None:
    result = run_main("exp", "apply", "nope", cwd=fresh_project, check=False)
    assert result.returncode == 2
    assert "error: no experiment named 'nope'" in result.stderr
    assert "List them with `pipespec exp show`." in result.stderr


def test_exp_show_outside_a_project(tmp_path: Path) -> None:
    result = run_main("exp", "show", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "no pipespec project here" in result.stderr
