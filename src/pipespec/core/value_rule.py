"""What a config-value rule is: a function of (key path, value, params) that yields a
``Problem`` per bad value.

The rule tables (``value_checks.RULES``, ``kubernetes_values.RULES``) import this module;
``value_checks.check_values`` runs them all. With the types here, ``kubernetes_values`` does
not import ``value_checks``, which imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """A bad value: the keys at fault (as paths, since a key may hold a dot: a gate's
    ``test.auc``), what is wrong, and how to fix it."""

    paths: tuple[KeyPath, ...]
    message: str
    hint: str | None = None

    @property
    def keys(self) -> list[str]:
        return [".".join(path) for path in self.paths]


Rule = Callable[[KeyPath, Any, Mapping[str, Any]], Iterator[Problem]]
