"""The behavior stage's outputs on the session's trained project: the DVC metrics file, the
stable JSON report, the HTML page and the model card with its behaviour section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipespec.bundle.bundle import Bundle


def test_stage_writes_metrics_reports_and_card(trained_project: Path) -> None:
    metrics = json.loads((trained_project / "metrics" / "behavior.json").read_text())["behavior"]
    assert metrics["passed"] == 1
    assert metrics["failed"] == 0
    assert metrics["checks"] >= 7  # slices, invariance, directional x2, cases, latency x2
    slice_ = metrics["slices"]["month_to_month"]
    assert slice_["rows"] > 30
    assert slice_["gap_auc"] == pytest.approx(metrics["overall"]["auc"] - slice_["auc"], abs=2e-6)
    assert 0 <= metrics["invariance"]["region"]["violation_rate"] <= 0.05
    assert metrics["cases"]["total"] == 2
    report = json.loads((trained_project / "reports" / "behavior" / "report.json").read_text())
    assert "p50_ms" not in json.dumps(report["latency"])  # timings stay out of DVC's files
    bundle = Bundle.load(trained_project / "models" / "bundle")
    assert report["bundle"]["sha256"] == bundle.sha
    html = (trained_project / "reports" / "behavior" / "report.html").read_text()
    assert "<h1>Behaviour report</h1>" in html
    assert '<p class="status">PASSED</p>' in html
    assert "<td>month_to_month</td>" in html
    card = (trained_project / "reports" / "behavior" / "card.md").read_text()
    assert card.startswith(f"# Model card: {bundle.card['name']}")
    assert "## Behaviour checks" in card
    assert bundle.sha[:16] in card
    gate = json.loads((trained_project / "metrics" / "gate.json").read_text())
    assert gate["gates_failed"] == 0


def test_only_the_sampled_rows_are_converted_and_they_equal_the_sample_of_the_whole(
    trained_project: Path, tmp_path: Path
) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipespec.bundle import behavior
    from pipespec.stages.behavior import _ReadAhead, _sampled
    from pipespec.stages.parquet import read_table

    def whole(path: Path, spec: object) -> pd.DataFrame:
        frame, _ = read_table(path)
        index = behavior.sample(len(frame), spec)  # type: ignore[arg-type]
        return frame.iloc[index].reset_index(drop=True)

    spec = behavior.spec_from({"name": "t", "rows": 100}, where="t")
    test = trained_project / "data" / "split" / "test.parquet"
    frame, total = _sampled(_ReadAhead(test).table(), spec)
    assert total is not None
    assert total > 100
    pd.testing.assert_frame_equal(frame, whole(test, spec), check_exact=True)
    # an integer column with nulls is float in pandas only where a null is converted with it:
    # the whole table is converted then, and sampled by run_checks
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"n": pa.array([1, None] + [2] * 198, pa.int64())}), path)
    frame, total = _sampled(_ReadAhead(path).table(), spec)
    assert total is None
    assert frame["n"].dtype == "float64"
    assert len(frame) == 200


def test_the_read_ahead_reads_every_part_in_order_and_raises_what_the_read_raised(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipespec.core.errors import DataError
    from pipespec.stages.behavior import _ReadAhead

    parts = tmp_path / "table"
    parts.mkdir()
    pq.write_table(pa.table({"x": [3, 4], "y": ["c", "d"]}), parts / "part.00001.parquet")
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), parts / "part.00000.parquet")
    assert _ReadAhead(parts).table().column("x").to_pylist() == [1, 2, 3, 4]
    only = _ReadAhead(parts, ["y"]).table()
    assert (only.column_names, only.column("y").to_pylist()) == (["y"], ["a", "b", "c", "d"])
    with pytest.raises(DataError, match=r"input file not found: .*missing\.parquet"):
        _ReadAhead(tmp_path / "missing.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file")
    reading = _ReadAhead(broken)
    with pytest.raises(pa.ArrowInvalid, match="Parquet magic bytes not found"):
        reading.table()
