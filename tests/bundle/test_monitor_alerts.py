"""Scheduled monitoring on the trained project's bundle: a webhook on 127.0.0.1 receives the
alerts when drift crosses a threshold and nothing otherwise; each run appends to a history
that `dvc plots show --json` draws; the HTML report holds an overlaid SVG histogram per
drifting feature."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from helpers import run_cli, run_tool

pytestmark = pytest.mark.slow
SVG = "{http://www.w3.org/2000/svg}"


class Webhook:
    """A real HTTP server on 127.0.0.1 that records every POST body."""

    def __init__(self) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.append({"type": self.headers["Content-Type"], "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def data(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC repository holding the test split as it is (same.csv) and shifted (shift.csv)."""
    base = tmp_path_factory.mktemp("monitoring")
    run_tool("git", "init", "-q", cwd=base)
    run_tool("dvc", "init", "-q", cwd=base)
    test = pd.read_parquet(trained_project / "data" / "split" / "test.parquet")
    test.to_csv(base / "same.csv", index=False)
    shifted = test.assign(
        monthly_charges=test["monthly_charges"] * 1.6, tenure_months=test["tenure_months"] // 3
    )
    shifted.to_csv(base / "shift.csv", index=False)
    return base


def monitor(bundle: Path, data: Path, current: str, *args: str):
    return run_cli("monitor", "--bundle", str(bundle), "--current", current, *args,
                   cwd=data, check=False)  # fmt: skip


def test_webhook_receives_the_alerts_only_on_drift(
    bundle_dir: Path, data: Path, webhook: Webhook
) -> None:
    calm = monitor(bundle_dir, data, "same.csv", "--notify", webhook.url)
    assert calm.returncode == 0, calm.stderr
    assert webhook.received == []

    drift = monitor(bundle_dir, data, "shift.csv", "--notify", webhook.url, "--report", "r")
    assert drift.returncode == 8, drift.stderr
    assert f"notified {webhook.url}" in drift.stderr
    (call,) = webhook.received
    assert call["type"] == "application/json"
    body = call["body"]
    report = json.loads((data / "r.json").read_text())
    assert body["status"] == "drift"
    assert body["alerts"] == report["alerts"]
    assert set(body["drifting_features"]) == {"monthly_charges", "tenure_months"}
    assert body["bundle"]["sha256"] == report["bundle"]["sha256"]

    bad = monitor(bundle_dir, data, "same.csv", "--notify", "ftp://example.com/x")
    assert bad.returncode == 2
    assert "--notify: 'ftp://example.com/x' is not an http(s) URL" in bad.stderr


def test_unreachable_webhook_is_reported_and_drift_still_exits_8(
    bundle_dir: Path, data: Path, webhook: Webhook
) -> None:
    url = webhook.url
    webhook.close()  # nobody listens there any more
    proc = monitor(bundle_dir, data, "shift.csv", "--notify", url)
    assert proc.returncode == 8
    assert f"--notify {url}: the webhook failed" in proc.stderr


def test_history_is_drawn_by_dvc_plots(bundle_dir: Path, data: Path) -> None:
    codes = [
        monitor(bundle_dir, data, current, "--history", "monitoring", "--report", "s").returncode
        for current in ("same.csv", "shift.csv", "same.csv")
    ]
    assert codes == [0, 8, 0]
    history = pd.read_csv(data / "monitoring" / "psi.csv")
    assert history["run"].tolist() == [1, 2, 3]
    assert history["status"].tolist() == ["ok", "drift", "ok"]
    psi = {f["name"]: f["psi"] for f in json.loads((data / "s.json").read_text())["features"]}
    assert history.loc[0, "tenure_months"] == pytest.approx(psi["tenure_months"], abs=1e-6)
    assert history.loc[1, "tenure_months"] > 0.2 > history.loc[2, "tenure_months"]

    shown = json.loads(run_tool("dvc", "plots", "show", "--json", cwd=data).stdout)["data"]
    (per_feature,) = [v for k, v in shown.items() if k.endswith("PSI per feature")]
    values = per_feature[0]["content"]["data"]["values"]
    drawn = {(v["field"], int(v["run"])): float(v["dvc_inferred_y_value"]) for v in values}
    assert set(f for f, _ in drawn) == set(psi)
    assert drawn[("tenure_months", 2)] == pytest.approx(history.loc[1, "tenure_months"])
    assert any(k.endswith("PSI of the predictions") for k in shown)

    (data / "other").mkdir()
    (data / "other" / "dvc.yaml").write_text("stages: {}\n")
    refused = monitor(bundle_dir, data, "same.csv", "--history", "other")
    assert refused.returncode == 2
    assert "was not written by pipespec monitor" in refused.stderr


def test_report_draws_an_overlaid_histogram_per_drifting_feature(
    bundle_dir: Path, data: Path
) -> None:
    proc = monitor(bundle_dir, data, "shift.csv", "--report", "shift")
    assert proc.returncode == 8
    report = json.loads((data / "shift.json").read_text())
    page = (data / "shift.html").read_text()
    assert "<script" not in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    start = page.index("<div class='charts' id='drifting'>")
    section = page[start : page.index("</div>", start) + len("</div>")]
    charts = ET.fromstring(section).findall(f"figure/{SVG}svg")
    drifting = [f for f in report["features"] if f["drift"]]
    assert len(charts) == len(drifting) == 2
    for chart in charts:
        title = chart.find(f"{SVG}text").text
        (feature,) = [f for f in drifting if f"feature {f['name']} " in title]
        dist = feature["distribution"]
        for kind in ("reference", "current"):
            bars = [r for r in chart.iter(f"{SVG}rect") if r.get("class") == kind]
            assert len(bars) == len(dist["labels"])
            heights = [float(r.get("height")) for r in bars]
            tallest = max(range(len(heights)), key=heights.__getitem__)
            assert tallest == max(range(len(dist[kind])), key=dist[kind].__getitem__)
            ratio = heights[tallest] / dist[kind][tallest]
            for h, share in zip(heights, dist[kind], strict=True):
                assert h == pytest.approx(ratio * share, abs=0.11)  # drawn to scale
        labels = [t.text for t in chart.iter(f"{SVG}text") if t.get("class") == "bin"]
        assert len(labels) == len(dist["labels"])
