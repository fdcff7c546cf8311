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
_EXPR = re.compile(r"^\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_bound(key: str, expr: Any) -> tuple[str, float]:
    """``">= 0.8"`` -> (">=", 0.8); a ConfigError naming ``key`` (a dotted path) otherwise."""
    match = _EXPR.match(str(expr))
    if not match:
        raise ConfigError(
            f"{key}: cannot read bound '{expr}'",
            hint='Write a comparison and a number, e.g. ">= 0.80" or "< 0.45".',
        )
    return match.group(1), float(match.group(2))


def holds(value: float, op: str, bound: float) -> bool:
    """Whether ``value op bound`` holds."""
    return OPERATORS[op](value, bound)
