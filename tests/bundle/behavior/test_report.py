"""The report: its JSON (rounded, numpy-free) read back as it was, the stable form DVC tracks,
the metrics summary, the error of a failed run, and the renderers (rich table, HTML page),
on a report built by hand."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pipespec.bundle import behavior
from pipespec.bundle.behavior import Check, Report
from pipespec.core.errors import BehaviorError


def _report() -> Report:
    report = Report(
        bundle={"name": "churn <beta>", "sha256": "ab" * 32},
        data={"source": "data/split/test.parquet", "rows": 1200, "total_rows": 5000},
        task="binary",
        seed=42,
        overall={"rows": 1200, "auc": 0.912345, "logloss": None},
        slices={"young": {"where": "age in [18, 30)", "rows": np.int64(80), "auc": 0.8}},
        search={
            "metric": "auc",
            "overall": 0.912345,
            "segments_tried": 3,
            "worst_gap": 0.2,
            "weakest": [
                {
                    "where": "plan = <b>gold</b>",
                    "columns": ["plan"],
                    "rows": 150,
                    "auc": 0.712345,
                    "gap": 0.2,
                }
            ],
        },
        invariance={"region": {"violation_rate": 1 / 3, "max_change": np.float64(0.25)}},
        latency={"single": {"rows": 1, "calls": 50, "p50_ms": 0.4, "p99_ms": 0.9}},
        notes=["monotone constraint on 'x' not checked & <noted>"],
    )
    report.checks += [
        Check("slice", "young", "age in [18, 30)", "auc", 0.8, ">=", 0.85, False),
        Check(
            "invariance",
            "region",
            "region set to 'north'",
            "violation_rate",
            1 / 3,
            "<=",
            0.5,
            True,
        ),
        Check("latency", "single_p99", "Bundle.predict, one record", "p99_ms", 0.9, "<=", 5, True),
    ]
    return report


def test_json_is_plain_rounded_and_reads_back() -> None:
    report = _report()
    data = report.to_json()
    text = json.dumps(data, sort_keys=True, allow_nan=False)  # numpy values became Python's
    assert data["passed"] is False
    assert (data["checks_total"], data["checks_failed"]) == (3, 1)
    invariance = data["checks"][1]
    assert invariance["value"] == 0.333333  # rounded; the message shows it as measured
    assert invariance["message"] == (
        "invariance 'region' (region set to 'north'): violation_rate = 0.333333, required <= 0.5"
    )
    assert data["invariance"]["region"] == {"violation_rate": 0.333333, "max_change": 0.25}
    assert data["overall"]["logloss"] is None
    back = behavior.as_report(json.loads(text))
    assert back.to_json() == data
    assert back.checks[2].bound == 5
    assert isinstance(back.checks[2].bound, int)
    with pytest.raises(BehaviorError, match=r"not a behaviour report: behaviour report\.chec"):
        behavior.as_report({**data, "checks": [{"kind": "slice"}]})


def test_stable_drops_the_timings_and_keeps_the_verdicts() -> None:
    stable = behavior.stable(_report().to_json())
    assert stable.latency == {"single": {"rows": 1, "calls": 50}}
    latency = stable.checks[2]
    assert latency.value is None
    assert latency.passed
    assert latency.message == "latency 'single_p99' (Bundle.predict, one record): within the budget"
    assert stable.checks[:2] == _report().checks[:2]


def test_summary_holds_the_numbers_dvc_and_the_gate_follow() -> None:
    summary = behavior.summary(_report())["behavior"]
    assert summary["passed"] == 0
    assert summary["checks"] == 3
    assert summary["failed"] == 1
    assert summary["overall"] == {"rows": 1200, "auc": 0.912345}  # null left out
    assert summary["slices"] == {"young": {"rows": 80, "auc": 0.8}}
    assert "weakest" not in summary["search"]
    assert summary["search"]["worst_gap"] == 0.2
    assert summary["latency"] == {"failed": 0}
    assert "directional" not in summary
    assert "cases" not in summary


def test_failure_error_names_each_failed_check() -> None:
    error = behavior.failure_error(_report(), "reports/behavior/report.html")
    assert error.exit_code == 10
    assert error.message == (
        "1 behaviour check(s) failed:\n"
        "  slice 'young' (age in [18, 30)): auc = 0.8, required >= 0.85"
    )
    assert error.hint == "Details in reports/behavior/report.html."


def test_table_lists_failures_first() -> None:
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(behavior.table(_report()))
    text = console.export_text()
    assert text.index("FAIL") < text.index("ok")
    assert "weakest segments by auc (overall 0.9123)" in text
    assert "latency single (1 row(s), 50 calls): p50 0.400 ms, p99 0.900 ms" in text
    assert "3 checks: 1 FAILED" in text


def test_html_page_is_self_contained_and_escapes_every_value() -> None:
    page = behavior.render_html(_report())
    assert page.startswith("<!doctype html>")
    assert "<title>pipespec behaviour report: churn &lt;beta&gt;</title>" in page
    assert '<p class="status bad">1 CHECK(S) FAILED</p>' in page
    assert "1,200 rows checked\n(of 5,000), seed 42" in page
    assert "all rows: rows 1200, auc 0.9123, logloss -</p>" in page
    assert "<td>plan = &lt;b&gt;gold&lt;/b&gt;</td><td>150</td><td>0.7123</td><td>+0.2</td>" in page
    assert "<li>monotone constraint on &#39;x&#39; not checked &amp; &lt;noted&gt;</li>" in page
    # failures first, each row with its value and bound
    rows = re.findall(r"<tr class=\"(bad)?\"><td>(\w+)</td>", page)
    assert rows == [("bad", "slice"), ("", "invariance"), ("", "latency")]
    assert "<td>0.3333</td><td>&lt;= 0.5</td><td>ok</td>" in page
    # the one stylesheet, inline; nothing fetched
    assert ".status.bad { color: #b91c1c; }" in page
    assert not re.search(r"(src|href)=|<script|<link|@import", page)
    passed = Report(bundle={"name": "m", "sha256": "0" * 64}, data=_report().data,
                    task="binary", seed=1)  # fmt: skip
    assert '<p class="status">PASSED</p>' in behavior.render_html(passed)
