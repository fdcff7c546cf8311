"""Every command in the README's shell code blocks goes through bash as written.

bash parses each block with every command replaced by a recorder (``PATH`` leads nowhere, and a
``command_not_found_handle`` prints the words bash passed): quoting, continuations, ``&&``
and comments are bash's own, and nothing runs. Then, for what bash produced:

- ``pipespec run``/``show``/``compose`` (and the inline ``pipespec run ...`` examples in the
  README's text and tables): the overrides compose, with the real Hydra, in a real project
  (placeholders such as ``PATH`` are values like any other). Composition is where quoting
  fails (``LexerNoViableAltException``); training is tested elsewhere.
- any other pipespec command: its subcommand exists and every ``--flag`` is in its ``--help``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from helpers import REPO, run_cli, run_main
from pipespec.core.errors import MARKERS, ConfigError, markdown_table, with_table
from pipespec.engine.compose import compose
from pipespec.engine.project import Project

README = REPO / "README.md"
FENCE = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(pipespec (?:run|show)\b[^`]*)`")
SYNOPSIS = re.compile(r"\[|\.\.\.|OVERRIDE|=NAME\b")  # usage lines, not commands
RECORDER = r"""
command_not_found_handle() { printf '%s\0' "$@"; printf '\n'; return 0; }
source() { command_not_found_handle source "$@"; }
cd() { command_not_found_handle cd "$@"; }
PATH=/nonexistent
"""


def _blocks() -> list[str]:
    return FENCE.findall(README.read_text(encoding="utf-8"))


def _inline() -> list[str]:
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    return sorted(c for c in set(INLINE.findall(text)) if not SYNOPSIS.search(c))


def _recorded(script: str) -> list[list[str]]:
    """The commands bash runs for ``script``, as the words it passes (nothing is run)."""
    proc = subprocess.run(
        ["/bin/bash", "-c", RECORDER + script],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, f"bash:\n{script}\n{proc.stderr}"
    assert not proc.stderr, f"bash:\n{script}\n{proc.stderr}"
    return [line.split("\0")[:-1] for line in proc.stdout.splitlines() if line]


def _commands() -> list[list[str]]:
    found = [argv for block in _blocks() for argv in _recorded(block)]
    found += [argv for command in _inline() for argv in _recorded(command)]
    return found


def test_readme_has_shell_blocks_and_inline_runs():
    assert len(_blocks()) >= 10
    assert any("+evaluation.gates" in c for c in _inline())


def test_every_readme_block_parses_in_bash():
    for block in _blocks():
        proc = subprocess.run(["/bin/bash", "-n", "-c", block], capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert proc.returncode == 0, f"{block}\n{proc.stderr}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("readme")
    run_cli("init", str(base / "proj"), cwd=base)  # the console script, as a user runs it
    return base / "proj"


def test_readme_overrides_compose_as_bash_passes_them(project):
    runs = [c for c in _commands() if c[:2] in (["pipespec", "run"], ["pipespec", "show"])]
    assert len(runs) >= 10
    for argv in runs:
        words = argv[2:]
        overrides = [a for i, a in enumerate(words)
                     if not a.startswith("-") and (i == 0 or words[i - 1] != "-j")]  # fmt: skip
        if "-m" in words or "--multirun" in words:  # a sweep: Hydra's parser takes it
            assert OverridesParser.create().parse_overrides(overrides), argv
            continue
        composed = compose(Project(project), overrides)
        assert composed is not None, argv


def test_readme_pipespec_commands_and_flags_exist(project):
    helps: dict[str, str] = {}
    for argv in _commands():
        if argv[0] != "pipespec" or argv[1] in ("run", "show"):
            continue
        sub = [a for a in argv[1:3] if not a.startswith("-")]
        key = " ".join(sub)
        if key not in helps:
            shown = run_main(*sub[:1], "--help", cwd=project, check=False)
            assert shown.returncode == 0, f"pipespec {sub[0]}: {shown.stderr}"
            helps[key] = shown.stdout
            if len(sub) > 1 and sub[1] in shown.stdout:  # a sub-subcommand
                shown = run_main(*sub, "--help", cwd=project, check=False)
                if shown.returncode == 0:
                    helps[key] = shown.stdout
        for flag in (a.split("=")[0] for a in argv if a.startswith("--")):
            assert flag in helps[key], f"{' '.join(argv)}: {flag} is not an option of {key}"


def test_readme_rerun_claim_matches_the_compiled_dvc_yaml():
    """The README: a `model.num_leaves` change re-runs train, package, evaluate, behavior and
    gate. DVC re-runs a stage whose params or deps changed: the stages that read `model`,
    and every stage downstream of their outputs."""
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]

    def reads_model(stage: dict) -> bool:
        keys = [k for p in stage.get("params", []) for k in (p if isinstance(p, dict) else [p])]
        return any(str(k) == "model" or str(k).startswith("model.") for k in keys)

    rerun = {name for name, stage in stages.items() if reads_model(stage)}
    changed = True
    while changed:
        outs = {o if isinstance(o, str) else next(iter(o)) for n in rerun
                for o in stages[n].get("outs", []) + stages[n].get("metrics", [])}  # fmt: skip
        more = {n for n, s in stages.items()
                if n not in rerun and any(d in outs for d in s.get("deps", []))}  # fmt: skip
        changed = bool(more)
        rerun |= more
    assert rerun == {"train", "package", "evaluate", "behavior", "gate"}
    text = README.read_text(encoding="utf-8")
    assert "`package`, `evaluate`, `behavior` and `gate`" in text


def test_readme_exit_code_table_is_the_error_classes():
    """The README's table is generated from core/errors.py (`make exit-codes`): stale, it fails."""
    text = README.read_text(encoding="utf-8")
    start, end = MARKERS
    assert text.count(start) == 1
    assert text.count(end) == 1
    table = text.split(start)[1].split(end)[0]
    assert table == f"\n{markdown_table()}\n", "README's exit codes are stale: run make exit-codes"
    assert with_table(text, "README.md") == text
    assert "| 9 | `release` or `promote` refused" in table


def test_the_exit_code_table_is_written_by_the_generator(tmp_path):
    """`make exit-codes`: the table between the markers is replaced, the rest kept."""
    from pipespec.core.errors import main

    start, end = MARKERS
    page = tmp_path / "page.md"
    page.write_text(f"# head\n{start}| old |\n{end}tail\n", encoding="utf-8")
    assert main([str(page)]) == 0
    assert page.read_text(encoding="utf-8") == f"# head\n{start}\n{markdown_table()}\n{end}tail\n"
    page.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"page\.md: no exit-code table markers"):
        main([str(page)])
    assert page.read_text(encoding="utf-8") == "no markers\n"
