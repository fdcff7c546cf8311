"""What one run of the behaviour checks found (``Report``, its ``Check`` verdicts), and the
forms people and DVC read it in: the JSON report, the stable report DVC tracks, the metrics
summary, the error of a failed run, a rich table and an HTML page. Every renderer takes a
``Report``, or the JSON a report was written as (``as_report`` reads it back)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipespec.core.documents import from_json, to_json
from pipespec.core.errors import BehaviorError, DocumentError
from pipespec.core.numbers import number

SECTION = "behavior"
DIGITS = 6  # the report's floats are rounded to this many decimals
DERIVED = ("passed", "checks_total", "checks_failed")  # in the JSON, from the checks


@dataclass
class Check:
    """One verdict: what was checked, the value observed, the bound, and whether it held.
    The message is written from the value as measured; the value kept is rounded."""

    kind: str  # slice, search, invariance, directional, cases, latency
    name: str
    subject: str  # the slice, feature or perturbation, in words
    measure: str  # what was measured (auc, gap_auc, violation_rate, p99_ms, ...)
    value: float | None
    op: str
    bound: float
    passed: bool
    message: str = ""

    def __post_init__(self) -> None:
        if not self.message:
            shown = "none" if self.value is None else f"{self.value:.6g}"
            self.message = (
                f"{self.kind} '{self.name}' ({self.subject}): {self.measure} = {shown}, "
                f"required {self.op} {self.bound:g}"
            )
        if isinstance(self.value, float):
            self.value = round(self.value, DIGITS) if math.isfinite(self.value) else None


@dataclass
class Report:
    """Everything one run of the checks found: per kind its results, and every verdict."""

    bundle: dict[str, Any]
    data: dict[str, Any]
    task: str
    seed: int
    overall: dict[str, Any] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    invariance: dict[str, Any] = field(default_factory=dict)
    directional: dict[str, Any] = field(default_factory=dict)
    cases: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data: numpy values as Python's, floats rounded, NaN as null."""
        return {
            **to_json(self, digits=DIGITS),
            "passed": self.passed,
            "checks_total": len(self.checks),
            "checks_failed": len(self.failures),
        }


def as_report(report: Report | Mapping[str, Any]) -> Report:
    """``report``, or the report its JSON (``Report.to_json``) was written from."""
    if isinstance(report, Report):
        return report
    data = {k: v for k, v in report.items() if k not in DERIVED}
    try:
        return from_json(Report, data, "behaviour report")
    except DocumentError as exc:
        raise BehaviorError(f"not a behaviour report: {exc.message}") from None


def stable(report: Report | Mapping[str, Any]) -> Report:
    """The report without the latency timings, which differ from run to run: what the stage
    writes to its DVC outputs, so ``dvc repro -f`` leaves ``dvc.lock`` unchanged. The latency
    verdicts stay (``checks``); the timings are printed."""
    report = as_report(report)
    checks = [
        replace(c, value=None, message=c.message.split(": ", 1)[0] + ": within the budget")
        if c.kind == "latency" and c.passed
        else c
        for c in report.checks
    ]
    latency = {k: {"rows": v["rows"], "calls": v["calls"]} for k, v in report.latency.items()}
    return replace(report, latency=latency, checks=checks)


def summary(report: Report | Mapping[str, Any]) -> dict[str, Any]:
    """``metrics/behavior.json``: the numbers ``dvc metrics diff`` and the gate follow, under
    the key ``behavior`` (gate keys read ``behavior.slices.NAME.auc``)."""
    report = as_report(report)
    failed_latency = sum(1 for c in report.failures if c.kind == "latency")

    def numbers(tree: Any) -> Any:
        if isinstance(tree, dict):
            kept = {k: numbers(v) for k, v in tree.items()}
            return {k: v for k, v in kept.items() if v is not None and v != {}}
        if isinstance(tree, bool):
            return int(tree)
        return tree if isinstance(tree, int | float) else None

    def of(part: dict[str, Any], *, but: str = "") -> Any:
        return numbers(to_json({k: v for k, v in part.items() if k != but}, digits=DIGITS))

    body = {
        "passed": int(report.passed),
        "checks": len(report.checks),
        "failed": len(report.failures),
        "overall": of(report.overall),
        "slices": of(report.slices),
        "search": of(report.search, but="weakest"),
        "invariance": of(report.invariance),
        "directional": of(report.directional),
        "cases": of(report.cases, but="failures"),
        "latency": {"failed": failed_latency} if report.latency else {},
    }
    return {SECTION: {k: v for k, v in body.items() if v != {}}}


def failure_error(report: Report | Mapping[str, Any], where: str | None = None) -> BehaviorError:
    """The error for a report with failed checks: each names the check, the slice or feature,
    the value observed and the bound."""
    failed = [c.message for c in as_report(report).failures]
    return BehaviorError(
        f"{len(failed)} behaviour check(s) failed:\n  " + "\n  ".join(failed),
        hint=f"Details in {where}." if where else None,
    )


def table(report: Report | Mapping[str, Any]) -> Any:
    """A rich table of every check, failures first."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    report = as_report(report)
    t = Table(
        title=f"behaviour of {report.bundle['name']} on {report.data['rows']:,} rows "
        f"of {report.data['source']}",
        title_justify="left",
    )
    for name, justify in (("check", "left"), ("subject", "left"), ("measured", "right"),
                          ("bound", "left"), ("", "left")):  # fmt: skip
        t.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for c in sorted(report.checks, key=lambda c: c.passed):
        value = "-" if c.value is None else f"{c.value:.4g}"
        mark = Text("ok", "green") if c.passed else Text("FAIL", "bold red")
        t.add_row(f"{c.kind} {c.name}", c.subject, f"{c.measure} {value}",
                  f"{c.op} {c.bound:g}", mark)  # fmt: skip
    lines: list[Any] = [t]
    search = report.search
    if search.get("weakest"):
        s = Table(
            title=f"weakest segments by {search['metric']} (overall {search['overall']:.4g})",
            title_justify="left",
        )
        for name in ("segment", "rows", search["metric"], "gap"):
            s.add_column(name, justify="left" if name == "segment" else "right")
        for seg in search["weakest"]:
            s.add_row(seg["where"], f"{seg['rows']:,}", f"{seg[search['metric']]:.4g}",
                      f"{seg['gap']:+.4g}")  # fmt: skip
        lines.append(s)
    for label, lat in report.latency.items():
        if "p50_ms" in lat:
            lines.append(
                Text(f"latency {label} ({lat['rows']:,} row(s), {lat['calls']} calls): "
                     f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms")
            )  # fmt: skip
    lines += [Text(f"note: {n}", "yellow") for n in report.notes]
    failed = len(report.failures)
    verdict = "all checks passed" if report.passed else f"{failed} FAILED"
    lines.append(Text(f"{len(report.checks)} checks: {verdict}",
                      "green" if report.passed else "bold red"))  # fmt: skip
    return Group(*lines)


def render_html(report: Report | Mapping[str, Any]) -> str:
    """One self-contained HTML page (``templates/behavior.html``): the verdict, every check,
    the weakest segments and the notes."""
    from pipespec.bundle.pages import render

    report = as_report(report)
    return render(
        "behavior.html",
        report=report,
        checks=sorted(report.checks, key=lambda c: c.passed),
        failed=len(report.failures),
        search=report.search,
        number=number,
    )
