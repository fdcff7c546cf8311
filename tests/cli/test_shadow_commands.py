"""``shadow report``: argument errors and a missing log, in-process (the shadow itself runs
in ``tests/bundle/test_shadow.py``)."""

from __future__ import annotations

from pathlib import Path

from helpers import run_main


def test_shadow_needs_an_action_and_a_log(tmp_path: Path) -> None:
    result = run_main("shadow", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "the following arguments are required: ACTION" in result.stderr
    result = run_main("shadow", "report", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "the following arguments are required: LOG" in result.stderr


def test_shadow_report_of_a_missing_log_is_a_data_error(tmp_path: Path) -> None:
    result = run_main("shadow", "report", "missing.jsonl", cwd=tmp_path, check=False)
    assert result.returncode == 4
    assert result.stderr == "error: shadow log missing.jsonl does not exist\n"


def test_shadow_report_bins_are_a_number(tmp_path: Path) -> None:
    result = run_main("shadow", "report", "log.jsonl", "--bins", "ten", cwd=tmp_path,
                      check=False)  # fmt: skip
    assert result.returncode == 2
    assert "argument --bins: invalid int value: 'ten'" in result.stderr
