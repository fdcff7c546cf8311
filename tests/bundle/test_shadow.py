"""Shadow serving with real processes: `pipespec serve --bundle A --shadow B` answers with A,
logs both predictions of every record (B's exactly what B alone predicts), and `pipespec
shadow report` gives the agreement, PSI and latencies the log holds. Its latency budget is
measured by bench/shadow.py, not here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import records, start_server

from helpers import SMALL, clone_trained, run_cli
from pipespec.bundle.bundle import Bundle
from pipespec.bundle.serve import predict_records

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def candidate(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another bundle from the same data: fewer boosting rounds (train and after re-run)."""
    repo = clone_trained(trained_project, tmp_path_factory.mktemp("candidate") / "repo")
    overrides = [o for o in SMALL if not o.startswith("model.num_boost_round")]
    run_cli("run", *overrides, "model.num_boost_round=8", cwd=repo)
    return repo / "models" / "bundle"


def test_shadow_logs_both_predictions_and_the_report_matches_them(
    trained_project: Path, bundle_dir: Path, candidate: Path, tmp_path: Path
) -> None:
    rows = pd.read_parquet(trained_project / "data" / "split" / "test.parquet")
    sent = records(rows.drop(columns=["churned"]).dropna().head(45))
    log = tmp_path / "shadow.jsonl"
    server = start_server(
        bundle_dir, tmp_path, "--shadow", str(candidate), "--shadow-log", str(log)
    )
    answers = []
    try:
        assert "shadow:" in server.stderr()
        for record in sent[:40]:
            answer = server.client.post("/predict", json=record)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json()["prediction"])
        answer = server.client.post("/predict", json=sent[40:])  # one request, five records
        answers.extend(answer.json()["predictions"])
    finally:
        server.stop()  # SIGTERM: the shadow's backlog is finished before the server exits

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["request"], e["record"]) for e in entries] == [
        *((n, 0) for n in range(1, 41)),
        *((41, i) for i in range(5)),
    ]
    shadow_bundle = Bundle.load(candidate)
    expected, _ = predict_records(shadow_bundle, sent)
    assert [e["input"] for e in entries] == sent
    assert [e["primary"]["output"] for e in entries] == answers
    assert [e["shadow"]["output"] for e in entries] == expected
    assert {e["shadow"]["bundle"] for e in entries} == {shadow_bundle.sha[:12]}
    assert {e["primary"]["bundle"] for e in entries} == {Bundle.load(bundle_dir).sha[:12]}

    proc = run_cli("shadow", "report", str(log), "--json", cwd=tmp_path)
    report = json.loads(proc.stdout)
    primary = np.array([a["probability"] for a in answers])
    shadow = np.array([o["probability"] for o in expected])
    same = [a["label"] == o["label"] for a, o in zip(answers, expected, strict=True)]
    assert report["records"] == report["compared"] == 45
    assert report["requests"] == 41
    assert report["agreement"] == pytest.approx(sum(same) / 45)
    assert report["agreement"] < 1 or not np.allclose(primary, shadow)  # really two models
    edges = np.unique(np.quantile(primary, np.linspace(0, 1, 11)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, primary, side="right"), minlength=len(edges) + 1)
    cur = np.bincount(np.searchsorted(edges, shadow, side="right"), minlength=len(edges) + 1)
    r, c = np.maximum(ref / 45, 1e-4), np.maximum(cur / 45, 1e-4)
    assert report["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-6)
    per_request = {e["request"]: e["shadow"]["ms"] for e in entries}
    assert report["latency_ms"]["shadow"]["p50"] == pytest.approx(
        np.percentile(list(per_request.values()), 50), abs=1e-4
    )
    assert 0 < report["latency_ms"]["primary"]["p50"] < 1000
    table = run_cli("shadow", "report", str(log), cwd=tmp_path).stdout
    assert "agreement (label)" in table


def test_a_bad_shadow_log_is_named(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    log.write_text('{"time": 1}\n')
    proc = run_cli("shadow", "report", str(log), cwd=tmp_path, check=False)
    assert proc.returncode == 4
    assert f"{log}, line 1: not a shadow log entry" in proc.stderr
