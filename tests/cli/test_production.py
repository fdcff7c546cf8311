"""``predict``, ``serve``, ``monitor`` and ``test``: argument errors and bundle refusals,
in-process (no server is started; serving runs in ``tests/bundle/test_serve.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_main

NO_BUNDLE = "error: no bundle at nope: not a directory"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("predict", "in.csv"), "the following arguments are required: OUTPUT"),
        (("predict", "in.csv", "out.csv", "--threads", "0"),
         "argument --threads: expected a positive integer, got 0"),
        (("predict", "in.csv", "out.csv", "--chunk-rows", "many"),
         "argument --chunk-rows: expected a positive integer, got 'many'"),
        (("predict", "in.csv", "out.csv", "--on-invalid", "drop"),
         "argument --on-invalid: invalid choice: 'drop'"),
        (("predict", "in.csv", "out.csv", "--format", "xlsx"),
         "argument --format: invalid choice: 'xlsx'"),
        (("serve", "--port", "70000"), "argument --port: port must be in 0..65535, got 70000"),
        (("serve", "--port", "http"), "argument --port: expected a port number, got 'http'"),
        (("serve", "--workers", "0"), "argument --workers: expected a positive integer, got 0"),
        (("serve", "--request-timeout", "0"),
         "argument --request-timeout: expected seconds above 0 (and below a day), got 0"),
        (("serve", "--keep-alive", "soon"),
         "argument --keep-alive: expected a number of seconds, got 'soon'"),
        (("monitor",), "the following arguments are required: --current"),
        (("test",), "the following arguments are required: DATA"),
        (("test", "rows.csv", "--seed", "x"), "argument --seed: invalid int value: 'x'"),
    ],
)  # fmt: skip
def test_argument_errors_exit_2_naming_the_option(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_main(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert f"pipespec {args[0]}: error: {message}" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ("predict", "--bundle", "nope", "in.csv", "out.csv"),
        ("monitor", "--bundle", "nope", "--current", "rows.csv"),
        ("test", "--bundle", "nope", "rows.csv"),
        ("serve", "--bundle", "nope", "--port", "0"),
    ],
)
def test_a_missing_bundle_is_exit_7_with_the_way_to_get_one(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run_main(*args, cwd=tmp_path, check=False)
    assert result.returncode == 7
    assert result.stderr.startswith(NO_BUNDLE)
    assert "dvc get REPO models/bundle --rev REV" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())
