"""``pipespec export alerts``: Prometheus alerting rules for ``pipespec serve``'s /metrics.

Series used (the server's metrics contract): ``pipespec_requests_total{endpoint,status,bundle}``,
``pipespec_request_duration_seconds{endpoint,bundle}`` (histogram), ``pipespec_records_total
{bundle}``, ``pipespec_input_refusals_total`` and ``pipespec_input_warnings_total{field,reason,
bundle}``, ``pipespec_prediction_bucket_total{bin,bundle}``.

Prediction drift is computed in PromQL: the share of predictions per bin over the window,
against the bundle's reference shares (recording rules written from its profile), gives the
PSI, the same formula as ``pipespec monitor`` (shares floored at 1e-4). The file therefore
depends on the bundle: a retrained bundle makes it stale.

Every series these rules read exists at zero from the server's start (``pipespec.bundle.
metrics``), so ``rate()`` and ``increase()`` count an incident's first burst: a series born
with its first event has no earlier sample, and both functions would ignore that jump. The
error rate is that of ``/predict``: scrapes and health checks do not dilute it, and a client
that hangs up (``status="499"``) or is cut off for slowness (``"408"``) is not a 5xx.
"""

from __future__ import annotations

from typing import Any

from pipespec.engine.export.base import ExportContext, dump_yaml, header

PATH = "deploy/prometheus/pipespec-alerts.yml"
EPSILON = 1e-4  # as pipespec.bundle.profile.EPSILON
SHARE = "pipespec:prediction_share:window"
REFERENCE = "pipespec:prediction_reference_share"
PSI = "pipespec:prediction_psi:window"


def reference_shares(profile: dict[str, Any]) -> dict[str, float]:
    """Share of training predictions per bin label: numeric bins by index, classes by name."""
    pred = profile["prediction"]
    if "edges" in pred:
        counts = {str(i): int(c) for i, c in enumerate(pred["counts"])}
    else:
        counts = {str(k): int(v) for k, v in pred["counts"].items()}
        if pred.get("other"):
            counts["__other__"] = int(pred["other"])
    total = sum(counts.values()) or 1
    return {k: round(max(v / total, EPSILON), 6) for k, v in counts.items()}


def rules(ctx: ExportContext) -> dict[str, Any]:
    """The rules document (two groups: drift recording rules, then the alerts)."""
    alerts = ctx.group("deploy")["alerts"]
    monitor = ctx.params["production"]["monitor"]
    window, hold = str(alerts["window"]), str(alerts["hold"])
    sha = ctx.bundle_sha256()
    recording: list[dict[str, Any]] = [
        {"record": REFERENCE, "expr": f"vector({share})", "labels": {"bin": b}}
        for b, share in sorted(reference_shares(ctx.bundle_profile()).items())
    ]
    increase = f"increase(pipespec_prediction_bucket_total[{window}])"
    recording.append(
        {
            "record": SHARE,
            "expr": f"sum by (bundle, bin) ({increase})\n"
            f"  / ignoring (bin) group_left sum by (bundle) ({increase})",
        }
    )
    current = f"clamp_min({SHARE}, {EPSILON})"
    recording.append(
        {
            "record": PSI,
            "expr": f"sum by (bundle) (\n  ({current} - on (bin) group_left {REFERENCE})\n"
            f"  * ln({current} / on (bin) group_left {REFERENCE})\n)",
        }
    )

    def rate(metric: str, selector: str = "") -> str:
        return f"sum by (bundle) (rate({metric}{selector}[{window}]))"

    def alert(name: str, expr: str, severity: str, summary: str) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": hold,
            "labels": {"severity": severity},
            "annotations": {"summary": summary},
        }

    records = rate("pipespec_records_total")
    errors = rate("pipespec_requests_total", '{endpoint="/predict",status=~"5.."}')
    answered = rate("pipespec_requests_total", '{endpoint="/predict"}')
    threshold = float(monitor["violation_rate"])
    firing = [
        alert(
            "PipespecErrorRate",
            f"{errors}\n  / {answered} > {float(alerts['error_rate'])}",
            "page",
            f"more than {alerts['error_rate']:.2%} of /predict requests fail (5xx) over {window}",
        ),
        alert(
            "PipespecLatencyP99",
            "histogram_quantile(0.99, sum by (bundle, le) "
            f'(rate(pipespec_request_duration_seconds_bucket{{endpoint="/predict"}}[{window}])))'
            f" > {float(alerts['latency_p99_seconds'])}",
            "page",
            f"p99 latency of /predict above {alerts['latency_p99_seconds']} s over {window}",
        ),
        alert(
            "PipespecInputWarnings",
            f"{rate('pipespec_input_warnings_total')}\n  / {records} > {threshold}",
            "ticket",
            f"input warnings per record above {threshold} (production.monitor.violation_rate)",
        ),
        alert(
            "PipespecInputRefusals",
            f"{rate('pipespec_input_refusals_total')}\n  / {records} > {threshold}",
            "ticket",
            f"refused inputs per record above {threshold} (production.monitor.violation_rate)",
        ),
        alert(
            "PipespecPredictionDrift",
            f"{PSI} >= {float(monitor['prediction_psi'])}",
            "ticket",
            f"PSI of predictions over {window} at or above {monitor['prediction_psi']} "
            f"(production.monitor.prediction_psi; reference: bundle {sha[:12]})",
        ),
    ]
    return {
        "groups": [
            {"name": "pipespec-drift", "rules": recording},
            {"name": "pipespec-alerts", "rules": firing},
        ]
    }


def export(ctx: ExportContext) -> dict[str, str]:
    sha = ctx.bundle_sha256()
    note = f"# Reference prediction shares from the bundle with SHA-256 {sha}.\n"
    return {PATH: header("alerts") + note + dump_yaml(rules(ctx))}
