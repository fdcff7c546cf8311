"""`GET /metrics`: Prometheus' text format from a real uvicorn on 127.0.0.1, parsed with
prometheus_client's own parser; the counters move by the right amounts for predicted,
flagged, refused and malformed requests, and add up over several worker processes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from bundle_helpers import Server, records, start_server
from prometheus_client.parser import text_string_to_metric_families

from pipespec.bundle.bundle import Bundle

pytestmark = pytest.mark.slow


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, labels)."""
    answer = server.client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
    )


@pytest.fixture(scope="module")
def good(trained_project: Path) -> dict:
    """A record with every field set, from the training split."""
    rows = pd.read_parquet(trained_project / "data" / "split" / "train.parquet")
    complete = rows.dropna().drop(columns=["churned"])
    return records(complete.iloc[:1])[0]


def test_counters_move_by_the_right_amounts(bundle_dir: Path, tmp_path: Path, good: dict) -> None:
    bundle = Bundle.load(bundle_dir)
    server = start_server(bundle_dir, tmp_path)
    try:
        before = scrape(server)
        assert_at_zero(before, bundle)
        bins = [dict(ls)["bin"] for n, ls in before if n == "pipespec_prediction_bucket_total"]
        assert len(bins) == len(bundle.profile["prediction"]["edges"]) + 1  # all, from zero
        post = server.client.post
        for _ in range(3):
            assert post("/predict", json=good).status_code == 200
        assert post("/predict", json=[good, {**good, "region": "mars"}]).status_code == 200
        assert post("/predict", json={**good, "age": 1000}).status_code == 200
        assert post("/predict", json={**good, "contract": None}).status_code == 200
        assert post("/predict", json={**good, "age": "x"}).status_code == 422
        bad = post("/predict", content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 400
        server.client.get("/health")
        after = scrape(server)
    finally:
        server.stop()

    sha = bundle.sha
    assert all(dict(ls)["bundle"] == sha for (_, ls) in after)  # every series names the bundle
    requests = "pipespec_requests_total"
    assert value(after, requests, endpoint="/predict", status="200") == 6
    assert value(after, requests, endpoint="/predict", status="422") == 1
    assert value(after, requests, endpoint="/predict", status="400") == 1
    health = value(after, requests, endpoint="/health") - value(
        before, requests, endpoint="/health"
    )
    assert health == 1  # (start_server's readiness checks came before)
    assert value(after, requests, endpoint="/metrics", status="200") == 1  # the first scrape
    assert value(after, "pipespec_request_duration_seconds_count", endpoint="/predict") == 8
    assert value(after, "pipespec_records_total") == 7
    assert value(after, "pipespec_prediction_bucket_total") == 7
    warnings = "pipespec_input_warnings_total"
    assert value(after, warnings, field="region", reason="unseen category") == 1
    assert value(after, warnings, field="age", reason="out of range") == 1
    assert value(after, warnings, field="contract", reason="unexpected null") == 1
    assert value(after, warnings) == 3
    assert value(after, "pipespec_input_refusals_total", field="age", reason="wrong type") == 1
    assert value(after, "pipespec_input_refusals_total") == 1
    features = "pipespec_feature_values_total"
    assert value(after, features, field="region", kind="unseen") == 1
    assert value(after, features, field="age", kind="out_of_range") == 1
    assert value(after, features, field="contract", kind="missing") == 1
    # the bins hold what the model answered: recompute them from in-process predictions
    scores = Bundle.load(bundle_dir).predict(
        pd.DataFrame([good] * 4 + [{**good, "region": "mars"}, {**good, "age": 1000},
                                   {**good, "contract": None}])
    )["prediction"].to_numpy()  # fmt: skip
    import numpy as np

    edges = np.asarray(bundle.profile["prediction"]["edges"])
    expected = np.bincount(np.searchsorted(edges, scores, side="left"), minlength=len(edges) + 1)
    for b, count in enumerate(expected):
        assert value(after, "pipespec_prediction_bucket_total", bin=str(b)) == count


def assert_at_zero(samples: dict, bundle: Bundle) -> None:
    """Each status /predict answers, each field with each reason: present, at 0, before any
    request, so that Prometheus' rate() counts an incident's first burst."""
    from pipespec.bundle.inputs import MALFORMED, NOT_WHOLE, NULL, OUT_OF_RANGE, UNSEEN

    requests = {
        dict(ls)["status"]: v
        for (n, ls), v in samples.items()
        if n == "pipespec_requests_total" and dict(ls)["endpoint"] == "/predict"
    }
    assert requests == {s: 0 for s in ("200", "400", "408", "413", "415", "422", "499", "500")}
    assert value(samples, "pipespec_request_duration_seconds_count", endpoint="/predict") == 0
    for field in bundle.schema.names:
        for name, reasons in (
            ("pipespec_input_refusals_total", MALFORMED),
            ("pipespec_input_warnings_total", (OUT_OF_RANGE, UNSEEN, NULL, NOT_WHOLE)),
        ):
            for reason in reasons:
                key = (name, (("bundle", bundle.sha), ("field", field), ("reason", reason)))
                assert samples[key] == 0, key
    assert value(samples, "pipespec_records_total") == 0


def test_figures_add_up_over_worker_processes(bundle_dir: Path, tmp_path: Path, good: dict) -> None:
    import httpx

    server = start_server(bundle_dir, tmp_path, "--workers", "2")
    try:
        assert_at_zero(scrape(server), Bundle.load(bundle_dir))  # every worker's series too
        # a new connection per request, so the two workers share them
        for _ in range(20):
            assert httpx.post(f"{server.url}/predict", json=good).status_code == 200
        odd = httpx.post(f"{server.url}/predict", json={**good, "region": "mars"})
        assert odd.status_code == 200
        # each scrape is answered by one worker, and each sees every worker's counts
        for _ in range(6):
            with httpx.Client(base_url=server.url) as fresh:
                samples = scrape(Server(server.proc, server.url, server.log, client=fresh))
            assert value(samples, "pipespec_records_total") == 21
            assert value(samples, "pipespec_requests_total", endpoint="/predict") == 21
            assert value(samples, "pipespec_input_warnings_total", field="region") == 1
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()
