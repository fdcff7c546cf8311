"""The one number formatter: every table, report, card and log line shows numbers through
``number``, so the same value reads the same way everywhere."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Literal

Notation = Literal["g", "f", "f-or-e"]


def number(value: Any, digits: int = 4, *, notation: Notation = "g", missing: str = "-") -> str:
    """``value`` for a person: ``missing`` for None; a float with ``digits`` significant
    digits (``g``), with ``digits`` decimals (``f``, integers too), or with decimals unless it
    is too small to show any (``f-or-e``: ``1.00e-05``); anything else as ``str``."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    if notation == "g":
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)
    v = float(value)
    if notation == "f-or-e" and isinstance(value, Integral):
        return str(value)
    if notation == "f-or-e" and v != 0 and abs(v) < 10 ** (-digits):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"
