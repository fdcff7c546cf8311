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

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipespec.bundle import histogram
from pipespec.bundle.bundle import Bundle
from pipespec.bundle.pages import report_paths
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


@dataclass(frozen=True)
class Run:
    """What ``run`` did: the report, the files it wrote, and the webhook's answer."""

    report: dict[str, Any]
    written: list[Path] = field(default_factory=list)  # the report's JSON and HTML
    history: Path | None = None  # the history file a row was appended to
    notified: tuple[str, int | None, str | None] | None = None  # url, HTTP status, error

    @property
    def alerts(self) -> list[str]:
        return list(self.report["alerts"])


def run(
    bundle: Bundle,
    current: str | os.PathLike[str],
    *,
    thresholds: dict[str, Any] | None = None,
    report: str | os.PathLike[str] | None = None,
    history: str | os.PathLike[str] | None = None,
    notify: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    sep: str | None = None,
    format: str | None = None,
    progress: Progress | None = None,
) -> Run:
    """``pipespec monitor``: the drift report of ``current`` with ``thresholds`` over the
    bundle's own, written to ``report`` (``.json`` and ``.html``), appended to the
    ``history`` folder, and POSTed to ``notify`` when an alert fires. The webhook URL and
    the history folder are checked before the data is read; a webhook that fails is
    recorded in ``Run.notified``, not raised (the drift is the result)."""
    limits = thresholds_for(bundle, thresholds)
    if notify:
        from pipespec.bundle.notify import check_url

        check_url(notify)
    if history:
        from pipespec.bundle.history import check_folder

        check_folder(history)
    found = monitor(
        bundle,
        current,
        thresholds=limits,
        chunk_rows=chunk_rows,
        sep=sep,
        format=format,
        progress=progress,
    )
    written: list[Path] = []
    if report:
        json_path, html_path = report_paths(report)
        write_reports(found, json_path, html_path)
        written = [json_path, html_path]
    appended = None
    if history:
        from pipespec.bundle.history import append

        appended = Path(append(found, history))
    notified: tuple[str, int | None, str | None] | None = None
    if found["alerts"] and notify:
        from pipespec.bundle.notify import send

        try:
            notified = (notify, send(notify, found), None)
        except OSError as exc:
            notified = (notify, None, str(exc))
    return Run(found, written, appended, notified)


def write_reports(report: dict[str, Any], json_path: Path, html_path: Path) -> None:
    """The report as JSON (for machines) and as a self-contained HTML page (for people)."""
    write_text(json_path, json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")
    write_text(html_path, render_html(report))


def render_html(report: dict[str, Any]) -> str:
    """One self-contained HTML page (``templates/drift.html``): alerts, features,
    predictions, the histograms of the drifting features, violations and unusual values."""
    from pipespec.bundle.pages import render

    features = sorted(report["features"], key=lambda f: -(f.get("psi") or 0))
    unusual = report.get("unusual") or {"rows": 0, "rate": 0.0, "by_column": {}, "reference": {}}
    return render(
        "drift.html",
        report=report,
        features=features,
        drifting=_charts([f for f in features if f["drift"]]),
        others=_charts([f for f in features if not f["drift"]]),
        prediction_chart=_chart("predictions", report["prediction"]),
        unusual=unusual,
        reference=unusual.get("reference") or {},
        unusual_cell=_unusual_cell,
    )


def _unusual_cell(feature: dict[str, Any]) -> str:
    """Each unusual reason's rate now and in the reference: 'unseen category 3.1% (2.9%)'."""
    return "; ".join(
        f"{key.replace('_', ' ')} {found['rate']:.1%} ({found['reference_rate']:.1%})"
        for key, found in (feature.get("unusual") or {}).items()
    )


def _charts(features: list[dict[str, Any]]) -> list[Any]:
    return [c for c in (_chart(f"feature {f['name']}", f) for f in features) if c]


def _chart(title: str, result: dict[str, Any]) -> Any:
    """An overlaid histogram of a feature's or the predictions' bins (SVG markup); empty
    when the result has no distribution."""
    from pipespec.bundle.pages import markup

    dist = result.get("distribution")
    if not dist:
        return ""
    label = f"{title} (PSI {number(result.get('psi'), 3, notation='f-or-e')})"
    return markup(histogram.svg(label, dist))
