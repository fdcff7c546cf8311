"""The one place terminal output goes through (like DVC's ``ui``).

Output for humans goes to stderr through ``console`` so that stdout stays clean for data
(``pipespec show`` prints YAML to stdout through ``out``).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def _width() -> int | None:
    return 120 if os.environ.get("CI") else None


@cache
def console() -> Console:
    """The console for progress, tables and messages (stderr)."""
    from rich.console import Console

    # soft_wrap: messages are not broken at the terminal's width, so a long path or an error
    # stays on one line in logs and for grep; tables still fit the width.
    return Console(stderr=True, highlight=False, width=_width(), soft_wrap=True)


@cache
def out() -> Console:
    """The console for command results meant to be piped (stdout)."""
    from rich.console import Console

    return Console(highlight=False, width=_width())


def error(message: str, hint: str | None = None) -> None:
    """Print an error the way every command does: red 'error:' line, optional dim hint."""
    from rich.markup import escape

    console().print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        console().print(f"[dim]{escape(hint)}[/]")
