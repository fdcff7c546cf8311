"""Overlaid histograms as inline SVG: the reference and current shares of one feature's bins,
for the drift report. No scripts and no external files, so the report reads offline."""

from __future__ import annotations

import html
from typing import Any

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 74  # margins: y labels, title, rotated x labels
REFERENCE = "#64748b"  # slate: the training data
CURRENT = "#2563eb"  # blue: the data being checked


def svg(title: str, distribution: dict[str, Any]) -> str:
    """One chart: per bin a reference bar and a current bar drawn over it (semi-transparent),
    y in percent with grid lines, bin labels below, and a legend."""
    labels = [str(label) for label in distribution["labels"]]
    reference = [float(v) for v in distribution["reference"]]
    current = [float(v) for v in distribution["current"]]
    top = _nice_top(max([*reference, *current, 0.01]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    bar = max(slot * 0.8, 1.0)
    e = html.escape
    parts = [
        f'<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{e(title)}: reference and current distributions">',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{e(title)}</text>',
        _legend(WIDTH - RIGHT - 190, 8),
    ]
    for k in range(5):  # grid lines and y labels at 0, 25, 50, 75, 100 % of the top
        value = top * k / 4
        y = TOP + plot_h - plot_h * k / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e5e7eb"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{value:.0%}</text>"
        )
    for i, label in enumerate(labels):
        x = LEFT + slot * i + (slot - bar) / 2
        for cls, share, color in (
            ("reference", reference[i], REFERENCE),
            ("current", current[i], CURRENT),
        ):
            h = plot_h * share / top
            parts.append(
                f'<rect class="{cls}" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{color}" fill-opacity="0.55">'
                f"<title>{e(label)}: {cls} {share:.1%}</title></rect>"
            )
        cx = LEFT + slot * (i + 0.5)
        ly = TOP + plot_h + 12
        parts.append(
            f'<text class="bin" x="{cx:.1f}" y="{ly:.1f}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {ly:.1f})">{e(_short(label))}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        f'stroke="#111"/></svg>'
    )
    return "".join(parts)


def _legend(x: float, y: float) -> str:
    items = []
    for k, (name, color) in enumerate((("reference", REFERENCE), ("current", CURRENT))):
        ox = x + k * 100
        items.append(
            f'<rect x="{ox}" y="{y}" width="12" height="12" fill="{color}" fill-opacity="0.55"/>'
            f'<text x="{ox + 16}" y="{y + 11}" font-size="12">{name}</text>'
        )
    return "".join(items)


def _nice_top(value: float) -> float:
    """The y axis' top, the smallest one at or above ``value`` whose quarters are whole
    percents: 4%, 8%, 20%, 40%, 60%, 80% or 100%."""
    for top in (0.04, 0.08, 0.2, 0.4, 0.6, 0.8, 1.0):
        if value <= top:
            return top
    return 1.0


def _short(label: str, limit: int = 16) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
