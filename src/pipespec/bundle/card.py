"""The model card: what the bundle's model is, what it was trained on and with, and how
well it did; as JSON (``card.json``, served at ``GET /metadata``) and readable Markdown
(``card.md``). Both hold no timestamp, so the same inputs give the same bytes."""

from __future__ import annotations

import json
from typing import Any

from pipespec.core.numbers import number


def versions() -> dict[str, str]:
    """The versions that decide the bundle's bytes and its predictions."""
    import platform

    import lightgbm
    import numpy
    import pandas
    import pyarrow

    from pipespec import __version__

    return {
        "pipespec": __version__,
        "lightgbm": lightgbm.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "python": ".".join(platform.python_version_tuple()[:2]),
    }


def markdown(card: dict[str, Any]) -> str:
    """``card.md``: the card for people."""
    model = card["model"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"- task: **{model['task']}**, target `{model['target']}`"
        + (f", classes {', '.join(f'`{c}`' for c in model['classes'])}" if model["classes"] else "")
        + (f", threshold {model['threshold']}" if model.get("threshold") is not None else ""),
        f"- environment: `{card['env']}`",
        f"- LightGBM model: {model['trees']} trees, objective `{model['objective']}`",
        f"- trained on {card['data']['train']['rows']:,} rows "
        f"(sha256 `{card['data']['train']['sha256'][:16]}`)"
        + _coerced(card["data"]["train"].get("coerced_missing")),
        f"- built by pipespec {card['pipespec']}"
        + (
            f", git commit `{card['git']['commit']}`"
            + (" (uncommitted changes)" if card["git"].get("dirty") else "")
            if card.get("git")
            else ""
        ),
        f"- bundle format {card['bundle_format']}",
        "",
        "## Training metrics",
        "",
        "The train stage's own (the evaluate stage scores this bundle afterwards: "
        "`metrics/evaluate.json`).",
        "",
    ]
    flat = {k: v for k, v in card["metrics"].items() if not isinstance(v, dict | list)}
    if flat:
        lines.append("| metric | value |")
        lines.append("| --- | ---: |")
        lines += [f"| {k} | {_cell(v)} |" for k, v in flat.items()]
    else:
        lines.append("No metrics were given to the package stage.")
    lines += ["", "## Features", "", "| feature | type | raw type | missing allowed | range |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for f in card["features"]:
        if f["type"] == "numeric":
            span = f"{_cell(f.get('min'))} .. {_cell(f.get('max'))}"
        else:
            n = f.get("categories")
            span = "any category" if n is None else f"{n} categories"
        lines.append(
            f"| `{f['name']}` | {f['type']} | {f['dtype']} | "
            f"{'yes' if f['nullable'] else 'no'} | {span} |"
        )
    if card["ignored"]:
        lines += ["", "Ignored input columns: " + ", ".join(f"`{c}`" for c in card["ignored"])]
    lines += [
        "",
        "## Versions",
        "",
        *(f"- {k} {v}" for k, v in card["versions"].items()),
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(card["params"], indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def _coerced(counts: dict[str, int] | None) -> str:
    """The values load read as missing under ``dataset.coerce_numeric``, per column."""
    if not counts:
        return ""
    listed = ", ".join(f"`{c}` {n:,}" for c, n in sorted(counts.items()))
    return (
        f"; {sum(counts.values()):,} value(s) that were not numbers read as missing "
        f"(dataset.coerce_numeric): {listed}"
    )


def _cell(value: Any) -> str:
    return number(value, 6, missing="")


def with_behavior(card_md: str, report: dict[str, Any]) -> str:
    """``card_md`` with a "Behaviour checks" section from a behaviour report.

    The bundle is hashed when it is written, before the behaviour checks run on it, so its own
    ``card.md`` cannot hold their results: the behavior stage writes this fuller card beside
    its reports, naming the bundle's SHA-256 so the two stay tied together.
    """
    failed = report["checks_failed"]
    lines = [
        card_md.rstrip("\n"),
        "",
        "## Behaviour checks",
        "",
        f"Bundle `{report['bundle']['sha256'][:16]}` on {report['data']['rows']:,} rows of "
        f"`{report['data']['source']}` (seed {report['seed']}): {report['checks_total']} checks, "
        + ("all passed." if not failed else f"**{failed} failed**."),
        "",
        "| check | name | subject | measure | value | bound | |",
        "| --- | --- | --- | --- | ---: | --- | --- |",
    ]
    for c in sorted(report["checks"], key=lambda c: c["passed"]):
        lines.append(
            f"| {c['kind']} | `{c['name']}` | {c['subject']} | {c['measure']} | "
            f"{_cell(c['value'])} | {c['op']} {c['bound']:g} | {'ok' if c['passed'] else 'FAIL'} |"
        )
    weakest = (report.get("search") or {}).get("weakest") or []
    if weakest:
        metric = report["search"]["metric"]
        lines += [
            "",
            f"Weakest segments by {metric} (all rows: {_cell(report['search']['overall'])}):",
            "",
            f"| segment | rows | {metric} | gap |",
            "| --- | ---: | ---: | ---: |",
            *(
                f"| {s['where']} | {s['rows']:,} | {_cell(s[metric])} | {_cell(s['gap'])} |"
                for s in weakest
            ),
        ]
    return "\n".join(lines) + "\n"
