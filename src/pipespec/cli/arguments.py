"""What several commands' parsers share: the overrides, the project, the number types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipespec.engine.project import Project


def command(sub: Any, name: str, func: Callable[[argparse.Namespace], int]) -> Any:
    """Add subcommand ``name``, run by ``func``: its one-line help is the first paragraph of
    ``func``'s docstring and its description the rest, as Click reads a command's docstring,
    so a command's documentation sits on the function that runs it."""
    first, _, rest = (func.__doc__ or "").strip().partition("\n\n")
    parser = sub.add_parser(
        name, help=" ".join(first.split()), description=" ".join(rest.split()) or None
    )
    parser.set_defaults(func=func)
    return parser


def overrides(parser: argparse.ArgumentParser) -> None:
    """The trailing Hydra overrides of run, compose and show."""
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="Hydra overrides: key=value, group=option, +key=value, ~key",
    )


def project(args: argparse.Namespace) -> Project:
    """The project ``-C DIR`` names, or the one holding the working directory."""
    from pipespec.engine.project import Project

    return Project.find(args.project)


def _integer(what: str, least: int, bound: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``least``, its errors naming ``what`` and ``bound``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected {bound}, got {value}")
        return value

    return parse


positive = _integer("a positive integer", 1, "a positive integer")
"""An integer >= 1 (workers, rows per chunk, threads)."""
count = _integer("a whole number", 0, "a whole number >= 0")
"""An integer >= 0."""


def seconds(text: str) -> float:
    """A duration in seconds, above 0 and below a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not 0 < value < 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds above 0 (and below a day), got {text}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got '{text}'") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value
