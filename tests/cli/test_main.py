"""The top parser (``cli/main.py``): --version, --help and its exit-code table, dispatch,
and errors turned into exit codes, in-process."""

from __future__ import annotations

import argparse
import gc
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import REPO, run_main
from pipespec import __version__
from pipespec.cli import main as cli_main
from pipespec.cli import pipeline
from pipespec.core.errors import INTERRUPTED, PipespecError, exit_codes, help_table


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) of every subcommand that runs something."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield path, parser
        return
    for name, sub in actions[0].choices.items():
        yield from _leaves(sub, (*path, name))


def test_version_is_core_versions_and_the_projects(tmp_path: Path) -> None:
    result = run_main("--version", cwd=tmp_path)
    assert result.stdout == f"pipespec {__version__}\n"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == __version__


def test_help_lists_every_command_and_the_exit_codes(tmp_path: Path) -> None:
    result = run_main("--help", cwd=tmp_path)
    for name in ("run", "exp", "compose", "show", "dag", "stage", "push-run-cache", "diff",
                 "init", "export", "predict", "serve", "monitor", "test", "release", "promote",
                 "registry", "shadow", "schema"):  # fmt: skip
        assert re.search(rf"^    {re.escape(name)}\b", result.stdout, re.M), name
    assert help_table() in result.stdout
    assert "  2    bad config, pipeline or usage" in result.stdout
    assert "  130  interrupted" in result.stdout
    assert "pipespec run model.num_leaves=63 env=prod" in result.stdout


def test_every_command_is_bound_to_its_function_and_has_help(tmp_path: Path) -> None:
    leaves = list(_leaves(cli_main.build_parser()))
    assert len(leaves) == 20  # 19 commands; exp has two actions, shadow and schema one
    for words, parser in leaves:
        func = parser.get_default("func")
        assert callable(func), words
        assert func.__module__.startswith("pipespec.cli."), words
        assert run_main(*words, "--help", cwd=tmp_path).returncode == 0, words


def test_no_command_and_an_unknown_one_are_usage_errors(tmp_path: Path) -> None:
    result = run_main(cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "the following arguments are required: COMMAND" in result.stderr
    result = run_main("trian", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "invalid choice: 'trian'" in result.stderr


def test_a_pipespec_error_is_its_exit_code_without_a_traceback(tmp_path: Path) -> None:
    result = run_main("compose", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: no pipespec project here: no configs/config.yaml in {tmp_path}"
    )
    assert "Create one with `pipespec init DIR`" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "cmd_dag", interrupted)
    result = run_main("dag", cwd=tmp_path, check=False)
    assert (result.returncode, result.stderr) == (INTERRUPTED, "error: interrupted\n")


def test_each_exit_code_has_one_meaning_and_its_classes() -> None:
    rows = {row.code: row for row in exit_codes()}
    assert sorted(rows) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 130]
    assert all(row.meaning for row in rows.values())
    assert rows[2].errors == ("ConfigError", "PipelineError")
    assert "UndeclaredParamError" in rows[5].errors
    assert "ContractChangeError" in rows[9].errors
    from pipespec.core.expression import ExpressionError

    assert issubclass(ExpressionError, PipespecError)  # defined elsewhere, exits 7 too

    assert exit_codes() == list(rows.values())  # the table does not depend on imports

    class Twice(PipespecError, code=2, meaning="another meaning"):
        pass

    try:
        with pytest.raises(TypeError, match="exit code 2 has two meanings"):
            exit_codes()
    finally:  # a subclass stays listed until collected: keep it out of other tests
        del Twice
        gc.collect()


def test_help_and_version_load_nothing_heavy() -> None:
    """What `pipespec --help` imports: the parsers only, none of the libraries commands use."""
    code = (
        "import sys\n"
        "from pipespec.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('pandas', 'numpy', 'hydra', 'omegaconf', 'dvc', 'lightgbm', 'fastapi',\n"
        "         'uvicorn', 'pandera', 'sklearn', 'yaml', 'rich')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "[]", proc.stdout


def test_a_command_s_process_exits_without_walking_its_heap(tmp_path: Path) -> None:
    """The console script freezes the heap out of the collector when the interpreter exits
    (Python's last collection walks every imported library's objects for nothing); a
    caller's own exit hooks registered before still run, and an in-process caller's
    collector is unchanged until then."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "from pipespec.cli.main import main\n"
        "code = main(['compose', '--check'])  # no project here: an error, returned\n"
        "print('exit code', code, 'frozen before exit:', gc.get_freeze_count() > 0)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    lines = proc.stdout.splitlines()
    assert lines[-2] == f"exit code {proc.returncode} frozen before exit: False", proc.stderr
    assert proc.returncode != 0
    assert lines[-1] == "frozen at exit: True"
