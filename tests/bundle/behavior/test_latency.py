"""The latency budget: p50/p99 of single records and batches, a bound's verdict, and the
timings left out of the stable report."""

from __future__ import annotations

from pipespec.bundle import behavior


def test_latency_measured_checked_and_left_out_of_the_stable_report(run_spec, check_of) -> None:
    report = run_spec(
        latency={"records": 20, "batches": 3, "batch_rows": 50, "single_p99_ms": 1e-6,
                 "batch_p50_ms": 1e6},
    )  # fmt: skip
    assert report["latency"]["single"]["calls"] == 20
    assert report["latency"]["batch"] == {**report["latency"]["batch"], "rows": 50, "calls": 3}
    latency = check_of(report, "latency", "single_p99")
    assert not latency["passed"]
    assert latency["value"] == report["latency"]["single"]["p99_ms"] > 0
    assert check_of(report, "latency", "batch_p50")["passed"]
    stable = behavior.stable(report).to_json()
    assert stable["latency"] == {"single": {"rows": 1, "calls": 20},
                                 "batch": {"rows": 50, "calls": 3}}  # fmt: skip
    assert check_of(stable, "latency", "batch_p50")["value"] is None
    assert check_of(stable, "latency", "single_p99") == latency  # a failure keeps its timing
