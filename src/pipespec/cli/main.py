"""The ``pipespec`` command: the top parser, and the dispatch to the command a group chose.

Each group module (``cli/run.py``, ``cli/production.py``, ...) adds its subcommands with
``add_parsers(sub)`` and binds each to its function with ``set_defaults(func=...)``, as DVC's
``commands/*.py`` do; a command parses, calls one library function and renders the result.
The modules import nothing heavy at the top, so ``pipespec --help`` and ``--version`` stay
fast. A ``PipespecError`` becomes its class's exit code (``core/errors.py``; the table is
in ``pipespec --help`` and the README).
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from pipespec.core.console import error
from pipespec.core.errors import INTERRUPTED, PipespecError, help_table
from pipespec.core.version import __version__

EXAMPLES = """\
Overrides use Hydra's grammar: key=value, group=option, +new_key=value, ~key.
Examples:
  pipespec run                                  # compose, compile, dvc repro
  pipespec run model.num_leaves=63 env=prod     # change a key and a group
  pipespec run dataset=csv dataset.path=data.csv dataset.target=y dataset.task=binary
  pipespec show model=lightgbm_small            # print the composition, write nothing
  pipespec compose --check                      # CI: are params.yaml and dvc.yaml fresh?
  pipespec diff HEAD~1 HEAD --md                # a PR comment: params, metrics, re-runs
  pipespec export github-actions                # CI workflow; `export --check` finds stale exports
  pipespec run -m model.num_leaves=15,31,63 -j 2  # a sweep, each run a DVC experiment
  pipespec run hparams_search=lightgbm_tpe      # an Optuna search
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``pipespec`` parser with every group's subcommands."""
    parser = argparse.ArgumentParser(
        prog="pipespec",
        description="Declarative pipelines for tabular ML: configs/ (Hydra) -> params.yaml, "
        "pipelines/ -> dvc.yaml, `dvc repro` runs them.",
        epilog=f"{help_table()}\n\n{EXAMPLES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pipespec {__version__}")
    parser.add_argument(
        "-C",
        "--project",
        metavar="DIR",
        default=None,
        help="project folder (default: the one containing the working directory)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in groups():
        group.add_parsers(sub)
    return parser


def groups() -> tuple[ModuleType, ...]:
    """The command groups, in the order ``pipespec --help`` lists their commands (imported
    here, not at the top: a stage handed to the warm runner builds no parser)."""
    from pipespec.cli import (
        dataschema,
        experiments,
        export,
        pipeline,
        production,
        registry,
        run,
        shadow,
    )

    return (run, experiments, pipeline, export, production, registry, shadow, dataschema)


def _hand_over(argv: Sequence[str]) -> int | None:
    """A ``pipespec stage NAME`` (or the configs check) started while a warm runner is up
    (``pipespec run`` itself hands its stages over without this process: a process starts
    only under plain ``dvc repro`` inside a run), passed to the runner before any parser is
    built. Its exit code, or None with no runner, or one that refuses (it then runs here)."""
    from pipespec.engine.runner import ENV_SOCKET, delegate

    return delegate(argv) if ENV_SOCKET in os.environ else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    _no_collection_at_exit()
    handed = _hand_over(sys.argv[1:] if argv is None else argv)
    if handed is not None:
        return handed
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PipespecError as exc:
        error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return INTERRUPTED


@functools.cache
def _no_collection_at_exit() -> None:
    """Freeze the heap out of the garbage collector when the interpreter exits (an
    ``atexit`` callback, which runs before Python's last collection). That collection walks
    every object the process holds, most of them the imported libraries' (pandas, Arrow,
    LightGBM, DVC), to free cycles the ending process gives back anyway: 0.3-0.4 s at the
    end of each ``pipespec stage`` that plain ``dvc repro`` starts. Output is written and
    closed before a command returns; an in-process caller's collector is unchanged until its
    own exit."""
    atexit.register(gc.freeze)


if __name__ == "__main__":
    sys.exit(main())
