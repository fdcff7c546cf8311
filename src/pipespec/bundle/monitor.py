"""Drift monitoring: current data against the bundle's reference profile.

The current data (CSV, Parquet, or JSON lines such as ``pipespec serve --log`` writes) is read
in chunks; each chunk is checked against the input schema, every row is predicted (values the
schema cannot read count as missing), and everything is summarised on the reference's bins
(``pipespec.bundle.profile``). The report
has per feature PSI, KS (numeric) or chi-square (categorical), the change in missing rate,
the schema-violation rate (malformed rows: what serving refuses), the unusual-value rates
(out of range, unseen category, unexpected null) beside the rates the bundle's held-out
reference rows show, the drift of the predictions, and an alert per crossed threshold.
Every alert but the violation rate is calibrated on the reference (``profile.compare``).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipespec.bundle import histogram
from pipespec.bundle.bundle import Bundle
from pipespec.bundle.profile import THRESHOLD_DEFAULTS, THRESHOLD_KEYS, Summary, compare
from pipespec.bundle.reader import DEFAULT_CHUNK_ROWS, RowReader
from pipespec.core.atomic import write_text
from pipespec.core.errors import ConfigError, DataError
from pipespec.core.numbers import number

Progress = Callable[[int, int, str], None]


def thresholds_for(bundle: Bundle, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bundle's thresholds (``production.monitor`` when it was built), then overrides."""
    out = {**THRESHOLD_DEFAULTS, **(bundle.profile.get("thresholds") or {})}
    for key, value in (overrides or {}).items():
        if key not in THRESHOLD_KEYS:
            raise ConfigError(
                f"unknown monitor threshold '{key}'",
                hint=f"Thresholds: {', '.join(THRESHOLD_KEYS)}",
            )
        out[key] = value
    missing = [k for k in THRESHOLD_KEYS if k not in out]
    if missing:
        raise ConfigError(f"monitor threshold(s) not set: {', '.join(missing)}")
    return out


def monitor(
    bundle: Bundle,
    current: str | os.PathLike[str],
    *,
    thresholds: dict[str, Any],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    sep: str | None = None,
    format: str | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The drift report of ``current`` (read with the training config's reading options)
    against ``bundle``'s reference profile."""
    import dataclasses

    options = bundle.reading if sep is None else dataclasses.replace(bundle.reading, sep=sep)
    reader = RowReader(
        current,
        options,
        wanted=bundle.schema.names,
        chunk_rows=chunk_rows,
        format=format,
        role="current data",
    )
    threads = threads or bundle.policy.num_threads
    summary = Summary(bundle.profile, bundle.task, bundle.classes)
    for chunk in reader:
        checked = bundle.check(chunk.frame, typed=reader.kind == "jsonl", first_row=chunk.start)
        # Every row is scored, refused or not (unreadable values count as missing): the
        # drift of the predictions is what the model would answer for this data.
        scores = bundle.score(checked, threads=threads)
        summary.add(checked, scores)
        if progress:
            progress(chunk.done, reader.total, reader.unit)
    if summary.rows == 0:
        raise DataError(f"current data {reader.path} has no rows to compare")
    report = compare(summary, thresholds)
    report["bundle"] = {
        "name": bundle.card.get("name"),
        "path": str(bundle.path),
        "sha256": bundle.sha,
    }
    report["current"] = str(reader.path)
    report["missing_columns"] = reader.missing
    return report


def report_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``FILE.json`` and ``FILE.html`` for ``--report FILE`` (either suffix, or none)."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in (".json", ".html", ".htm") else path
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".html")


def write_reports(report: dict[str, Any], json_path: Path, html_path: Path) -> None:
    """The report as JSON (for machines) and as a self-contained HTML page (for people)."""
    write_text(json_path, json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")
    write_text(html_path, render_html(report))


def _fmt(value: Any, digits: int = 3) -> str:
    return html.escape(number(value, digits, notation="f-or-e"))


def render_html(report: dict[str, Any]) -> str:
    """One HTML page, no scripts or external files: alerts, features, predictions."""
    e = html.escape
    status = report["status"]
    rows = []
    for f in sorted(report["features"], key=lambda f: -(f.get("psi") or 0)):
        rows.append(
            f"<tr class='{'bad' if f['drift'] else ''}'><td>{e(f['name'])}</td>"
            f"<td>{e(f['type'])}</td><td>{_fmt(f.get('psi'))}</td>"
            f"<td>{e(str(f.get('test') or ''))}</td><td>{_fmt(f.get('statistic'))}</td>"
            f"<td>{_fmt(f.get('pvalue'))}</td>"
            f"<td>{_fmt(f['missing_reference'])} → {_fmt(f['missing_current'])}</td>"
            f"<td>{f['violations']}</td><td>{e(_unusual_cell(f))}</td></tr>"
        )
    pred = report["prediction"]
    violations = "".join(
        f"<tr><td>{e(col)}</td><td>{e(reason)}</td><td>{count}</td></tr>"
        for col, reasons in report["violations"]["by_column"].items()
        for reason, count in reasons.items()
    )
    unusual = report.get("unusual") or {"rows": 0, "rate": 0.0, "by_column": {}, "reference": {}}
    unusual_rows = "".join(
        f"<tr class='{'bad' if found.get('alert') else ''}'><td>{e(col)}</td>"
        f"<td>{e(key.replace('_', ' '))}</td><td>{found['count']:,}</td>"
        f"<td>{found['rate']:.2%}</td><td>{found['reference_rate']:.2%}</td></tr>"
        for col, reasons in unusual["by_column"].items()
        for key, found in reasons.items()
    )
    reference = unusual.get("reference") or {}
    calibrated = (
        f"reference: {reference['rows']:,} held-out {e(str(reference['source']))} rows"
        if reference.get("rows")
        else "no reference rows in this bundle: rates are compared with zero"
    )
    alerts = "".join(f"<li>{e(a)}</li>" for a in report["alerts"]) or "<li>none</li>"
    color = "#b91c1c" if status == "drift" else "#15803d"
    thresholds = ", ".join(f"{e(k)} = {_fmt(v)}" for k, v in report["thresholds"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>pipespec drift report: {e(str(report["bundle"]["name"]))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }}
tr.bad td {{ background: #fde8e8; }}
.status {{ font-size: 1.4rem; font-weight: bold; color: {color}; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
small {{ color: #666; }}
</style></head><body>
<h1>Drift report</h1>
<p class="status">{e(status.upper())}</p>
<p>bundle <b>{e(str(report["bundle"]["name"]))}</b>
<small>({e(report["bundle"]["sha256"][:12])}, {e(report["bundle"]["path"])})</small><br>
current data <b>{e(report["current"])}</b>: {report["rows"]:,} rows
({report["valid_rows"]:,} valid);
reference: {report["reference_rows"]:,} training rows</p>
<h2>Alerts</h2><ul>{alerts}</ul>
<p><small>thresholds: {thresholds}</small></p>
<h2>Features</h2>
<table><tr><th>feature</th><th>type</th><th>PSI</th><th>test</th><th>statistic</th>
<th>p-value</th><th>missing rate</th><th>violations</th><th>unusual (reference)</th></tr>
{"".join(rows)}
</table>
{_charts(report)}
<h2>Predictions</h2>
<table><tr><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th></tr>
<tr class="{"bad" if pred["drift"] else ""}"><td>{_fmt(pred.get("psi"))}</td>
<td>{e(str(pred.get("test") or ""))}</td><td>{_fmt(pred.get("statistic"))}</td>
<td>{_fmt(pred.get("pvalue"))}</td></tr></table>
{_chart("predictions", pred)}
<h2>Schema violations</h2>
<p>malformed rows (what serving refuses): {report["violations"]["rows"]:,}
({report["violations"]["rate"]:.2%})</p>
<table><tr><th>column</th><th>reason</th><th>values</th></tr>{violations}</table>
<h2>Unusual values</h2>
<p>rows with an unusual value (predicted, with a warning): {unusual["rows"]:,}
({unusual["rate"]:.2%}); {calibrated}</p>
<table><tr><th>column</th><th>reason</th><th>values</th><th>rate</th>
<th>reference rate</th></tr>{unusual_rows}</table>
</body></html>
"""


def _unusual_cell(feature: dict[str, Any]) -> str:
    """Each unusual reason's rate now and in the reference: 'unseen category 3.1% (2.9%)'."""
    return "; ".join(
        f"{key.replace('_', ' ')} {found['rate']:.1%} ({found['reference_rate']:.1%})"
        for key, found in (feature.get("unusual") or {}).items()
    )


def _charts(report: dict[str, Any]) -> str:
    """An overlaid histogram per drifting feature; the others folded away below."""
    features = sorted(report["features"], key=lambda f: -(f.get("psi") or 0))
    drifting = "".join(_chart(f"feature {f['name']}", f) for f in features if f["drift"])
    others = "".join(_chart(f"feature {f['name']}", f) for f in features if not f["drift"])
    out = ""
    if drifting:
        out += f"<h2>Drifting features</h2><div class='charts' id='drifting'>{drifting}</div>"
    if others:
        out += (
            "<details><summary>Distributions of the other features</summary>"
            f"<div class='charts'>{others}</div></details>"
        )
    return out


def _chart(title: str, result: dict[str, Any]) -> str:
    dist = result.get("distribution")
    if not dist:
        return ""
    label = f"{title} (PSI {_fmt(result.get('psi'))})"
    return f"<figure>{histogram.svg(label, dist)}</figure>"
