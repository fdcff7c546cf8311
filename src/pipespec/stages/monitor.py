"""The ``monitor`` stage: drift of a data file against a bundle, for a ``pipelines/monitor.yaml``.

Use it as ``kind: monitor`` (short for ``pipespec.stages.monitor:run``) with two inputs, the
bundle (``package.bundle``) and the current data file. It writes a DVC metrics file (drift
status, PSI per feature, violation rate, unusual-value rate), the full JSON report and an HTML
report, then fails with exit code 8 when a ``production.monitor`` threshold is crossed, so
``dvc repro`` run by a scheduler alerts.
"""

from __future__ import annotations

import json
from typing import Any

from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.core.errors import DriftError
from pipespec.stages.context import StageContext

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("production.monitor",)
INPUTS = ("bundle", "current")
ANY_INPUTS = False
OUTPUTS = {
    "metrics": ("metrics/{stage}.json", "metrics"),
    "report": ("reports/{stage}/report.json", "out"),
    "html": ("reports/{stage}/report.html", "out"),
}


def run(ctx: StageContext) -> None:
    """Drift of the current data against the bundle's reference profile."""
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.monitor import monitor, thresholds_for, write_reports
    from pipespec.bundle.profile import THRESHOLD_KEYS

    bundle = Bundle.load(ctx.input("bundle"), project=ctx.root)  # its own custom modules
    configured = ctx.params["production"]["monitor"]
    thresholds = thresholds_for(bundle, {k: configured[k] for k in THRESHOLD_KEYS})
    report = monitor(bundle, ctx.input("current"), thresholds=thresholds)
    write_reports(report, ctx.output("report"), ctx.output("html"))
    write_json(ctx.output("metrics"), summary(report))
    console().print(
        f"  {report['rows']:,} rows, {report['violations']['rate']:.2%} schema violations, "
        f"status {report['status']} -> {ctx.output('html')}"
    )
    if report["alerts"]:
        raise DriftError(
            f"drift: {len(report['alerts'])} threshold(s) crossed:\n  "
            + "\n  ".join(report["alerts"]),
            hint=f"Details in {ctx.output('html')}.",
        )


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers `dvc metrics show` and `dvc metrics diff` can follow."""
    out: dict[str, Any] = {
        "drift": int(report["status"] == "drift"),
        "alerts": len(report["alerts"]),
        "rows": report["rows"],
        "violation_rate": round(report["violations"]["rate"], 6),
        "unusual_rate": round(report["unusual"]["rate"], 6),
        "prediction_psi": _round(report["prediction"].get("psi")),
        "psi": {f["name"]: _round(f.get("psi")) for f in report["features"]},
    }
    return json.loads(json.dumps(out))


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)
