"""One root exception and one subclass per kind of failure.

Every error carries an exit code, so the CLI can turn any of them into a process exit status
that scripts can rely on. A class that introduces a code gives its one-line meaning too
(``class ConfigError(PipespecError, code=2, meaning=...)``); ``exit_codes()`` reads the table
from the classes, and ``pipespec --help`` and the README's table are generated from it:
``make exit-codes`` rewrites the README's table between its markers,
and ``tests/test_readme.py`` fails when it is stale.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

OK = 0
INTERRUPTED = 130  # Ctrl-C, or SIGTERM while a stage runs (128 + SIGINT, as shells report it)


class PipespecError(Exception):
    """Root of every error pipespec raises on purpose."""

    exit_code = 1
    meaning = "unexpected error (any other exception, shown with its traceback)"

    def __init_subclass__(
        cls, *, code: int | None = None, meaning: str | None = None, **kwargs: Any
    ) -> None:
        """``code``: the exit code of this class and its subclasses; ``meaning``: what the
        code says, for the exit-code table (given once per code, by the class that owns it)."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.exit_code = code
        cls.meaning = meaning or ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(
    PipespecError,
    code=2,
    meaning="bad config, pipeline or usage (unknown key, wrong type, "
    "unknown stage kind, bad command line)",
):
    """A config file, an override or a composition is wrong (unknown key, wrong type, ...)."""


class PipelineError(PipespecError, code=ConfigError.exit_code):
    """A file in ``pipelines/`` is wrong: unknown kind, dangling input, duplicate stage."""


class StaleError(
    PipespecError,
    code=3,
    meaning="`params.yaml`, `dvc.yaml` or an exported file is stale "
    "(`compose --check`, `export --check`)",
):
    """``params.yaml`` or ``dvc.yaml`` no longer matches ``configs/`` and ``pipelines/``."""


class DataError(
    PipespecError,
    code=4,
    meaning="bad data (file not found, missing column, wrong target type, ...)",
):
    """Input data is unreadable or does not fit the config (missing column, wrong type, ...)."""


class StageError(
    PipespecError, code=5, meaning="a stage failed (including a read of an undeclared params key)"
):
    """A stage failed while running."""


class EngineMismatchError(StageError):
    """The compiled engine's scores differ from ``booster.predict`` by more than allowed."""


class UndeclaredParamError(StageError):
    """A stage read a params key its kind does not declare, so DVC would not track it."""


class ReproError(
    PipespecError, code=6, meaning="DVC or git failed (and so `pipespec run` when a stage fails)"
):
    """``dvc repro`` (or another DVC/git command pipespec drives) failed."""


class BundleError(
    PipespecError,
    code=7,
    meaning="bad bundle (missing, tampered with, or of an unreadable format version)",
):
    """A production bundle is missing, tampered with, or of a format this version cannot read."""


class DocumentError(BundleError):
    """A document (transforms, input schema, card, ...) does not fit its typed class."""


class DriftError(PipespecError, code=8, meaning="drift beyond a monitor threshold"):
    """``pipespec monitor`` (or a monitor stage) found drift beyond a configured threshold."""


class RegistryError(
    PipespecError,
    code=9,
    meaning="`release` or `promote` refused (dirty workspace, failed "
    "gate, out of order, ...); no tag was created",
):
    """The registry refused a release or a promotion; no tag was created."""


class DirtyWorkspaceError(RegistryError):
    """``pipespec release`` needs a clean git workspace: the tag must name what is committed."""


class OutdatedOutputsError(RegistryError):
    """``dvc.lock`` does not match the outputs (``dvc status`` is not clean)."""


class GateFailedError(RegistryError):
    """The quality gate of the version to release (or promote) did not pass."""


class PromotionError(RegistryError):
    """A promotion out of the configured order, or without the evidence its stage requires."""


class UnknownVersionError(RegistryError):
    """No release tag for this artifact and version (or stage)."""


class EvidenceError(RegistryError):
    """A release tag's evidence does not parse, or lacks what is needed (the bundle SHA-256,
    a report a stage requires)."""


class ContractChangeError(PromotionError):
    """A promotion would change what the stage's clients receive (task, classes, output
    fields or required inputs) without ``--allow-contract-change``."""


class BehaviorError(
    PipespecError,
    code=10,
    meaning="a behaviour check failed (`pipespec test`, or the "
    "`behavior` stage with `behavior.enforce`)",
):
    """A behaviour check of a model failed (``pipespec test``, or the ``behavior`` stage)."""


class OutputError(
    PipespecError,
    code=11,
    meaning="an output cannot be written or removed (read-only, "
    "immutable, a file where a folder must be)",
):
    """A file or folder pipespec must write or remove cannot be: read-only, immutable, or a
    file where a folder must be. Nothing was half-written."""


# --- the exit-code table --------------------------------------------------------------------


class ExitCode(NamedTuple):
    """One row of the table: a code, what it means, the error classes that exit with it (a
    named tuple: ``dataclasses`` would cost ``pipespec --version`` its import time)."""

    code: int
    meaning: str
    errors: tuple[str, ...] = ()


def exit_codes() -> list[ExitCode]:
    """Every exit code pipespec uses, in order, read from the error classes (each code's
    meaning given once; the classes listed are those of this module, their subclasses
    elsewhere exit with the same code)."""
    classes: list[type[PipespecError]] = [PipespecError]
    for cls in classes:  # breadth first over the tree, in definition order
        classes.extend(cls.__subclasses__())
    rows: dict[int, ExitCode] = {
        OK: ExitCode(OK, "success"),
        INTERRUPTED: ExitCode(INTERRUPTED, "interrupted (Ctrl-C, or SIGTERM during a stage)"),
    }
    for cls in classes:
        row = rows.setdefault(cls.exit_code, ExitCode(cls.exit_code, ""))
        if cls.meaning and row.meaning:
            raise TypeError(f"exit code {cls.exit_code} has two meanings ({cls.__name__})")
        # the classes of this module only: the table must not depend on what else is imported
        # (core/expression.py's ExpressionError, a DocumentError, exits 7 as well)
        named = (cls.__name__,) if cls.__module__ == __name__ else ()
        rows[cls.exit_code] = ExitCode(row.code, cls.meaning or row.meaning, (*row.errors, *named))
    return [rows[code] for code in sorted(rows)]


def help_table() -> str:
    """The table for ``pipespec --help``: one line per code."""
    lines = ["exit codes:"]
    for row in exit_codes():
        lines.append(f"  {row.code:<4} {row.meaning.replace('`', '')}")
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's table (Markdown), between ``MARKERS``."""
    lines = ["| code | meaning | raised as |", "| --- | --- | --- |"]
    for row in exit_codes():
        raised = ", ".join(f"`{name}`" for name in row.errors) or "-"
        lines.append(f"| {row.code} | {row.meaning} | {raised} |")
    return "\n".join(lines) + "\n"


MARKERS = ("<!-- exit codes: generated from core/errors.py by `make exit-codes` -->\n",
           "<!-- end of exit codes -->\n")  # fmt: skip


def with_table(text: str, where: str) -> str:
    """``text`` (a Markdown file's) with the exit-code table between its markers replaced."""
    start, end = MARKERS
    head, found, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        raise ConfigError(f"{where}: no exit-code table markers", hint=f"Add {start!r}, {end!r}.")
    return f"{head}{start}\n{markdown_table()}\n{end}{tail}"


def main(argv: list[str]) -> int:
    """Print the Markdown table, or rewrite FILE's (``argv == [FILE]``): ``make exit-codes``."""
    if not argv:
        sys.stdout.write(markdown_table())
        return OK
    import os
    from pathlib import Path

    path = Path(argv[0])
    text = with_table(path.read_text(encoding="utf-8"), str(path))
    temporary = path.with_name(f".{path.name}.tmp")  # then renamed: never half-written
    temporary.write_text(text, encoding="utf-8", newline="\n")
    os.replace(temporary, path)
    return OK
