"""Bounds written as text, ``">= 0.80"`` or ``"< 0.45"``: quality gates and behaviour checks
read them the same way."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from pipespec.core.errors import ConfigError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
HINT = 'Write a comparison and a number, e.g. ">= 0.80" or "< 0.45".'
_EXPR = re.compile(r"^\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def read_bound(expr: Any) -> tuple[str, float] | None:
    """``">= 0.8"`` -> (">=", 0.8); None if ``expr`` is not a bound."""
    match = _EXPR.match(str(expr))
    return (match.group(1), float(match.group(2))) if match else None


def parse_bound(key: str, expr: Any) -> tuple[str, float]:
    """``">= 0.8"`` -> (">=", 0.8); a ConfigError naming ``key`` (a dotted path) otherwise."""
    bound = read_bound(expr)
    if bound is None:
        raise ConfigError(f"{key}: cannot read bound '{expr}'", hint=HINT)
    return bound


def holds(value: float, op: str, bound: float) -> bool:
    """Whether ``value op bound`` holds."""
    return OPERATORS[op](value, bound)
