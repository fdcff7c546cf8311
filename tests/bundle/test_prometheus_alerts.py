"""The exported alert rules in a real Prometheus server (Debian's `prometheus`), scraping two
real `pipespec serve` processes on 127.0.0.1 every second: on clean traffic no alert is
active; each alert fires on the first burst of its condition (5xx answers, slow requests,
refused inputs, shifted predictions, unusual inputs), because every series a rule reads
exists at zero from the server's start."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from bundle_helpers import Server, records, start_server

from helpers import run_cli

pytestmark = pytest.mark.slow
ALERTS = (
    "PipespecErrorRate",
    "PipespecLatencyP99",
    "PipespecInputRefusals",
    "PipespecPredictionDrift",
    "PipespecInputWarnings",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A real Prometheus server on 127.0.0.1 scraping ``targets`` every second."""

    def __init__(self, workdir: Path, rules: Path, targets: list[str]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "Debian's `prometheus` package is needed (apt-get install prometheus)"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "pipespec", "static_configs": [{"targets": targets}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = workdir / "prometheus.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address={self.url.removeprefix('http://')}"],
                stdout=fh, stderr=subprocess.STDOUT, cwd=workdir,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)

    def query(self, expr: str) -> list[dict]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"]["result"])

    def active(self) -> dict[str, str]:
        """Each active alert's name and state (pending, firing)."""
        answer = httpx.get(f"{self.url}/api/v1/alerts", timeout=5)
        assert answer.status_code == 200, answer.text
        return {a["labels"]["alertname"]: a["state"] for a in answer.json()["data"]["alerts"]}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


@pytest.fixture
def rules(trained_project: Path, tmp_path: Path) -> Path:
    """`pipespec export alerts` with a 30 s window and no hold (config overrides), in a copy
    of the trained project."""
    root = tmp_path / "proj"
    shutil.copytree(trained_project, root, symlinks=True, ignore=shutil.ignore_patterns("cache"))
    run_cli(
        "compose", "deploy.alerts.window=30s", "deploy.alerts.hold=0s",
        "deploy.alerts.latency_p99_seconds=0.25", cwd=root,
    )  # fmt: skip
    run_cli("export", "alerts", cwd=root)
    return root / "deploy" / "prometheus" / "pipespec-alerts.yml"


@pytest.fixture
def servers(bundle_dir: Path, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """The bundle served twice: plainly, and with a prediction log that cannot be written
    (/dev/full: every answer is a 500, a real fault)."""
    started: list[Server] = []
    try:
        started.append(start_server(bundle_dir, tmp_path))
        started.append(start_server(bundle_dir, tmp_path, "--log", "/dev/full"))
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def test_each_alert_fires_on_the_first_burst_of_its_condition(
    rules: Path, servers: tuple[Server, Server], bundle_dir: Path, trained_project: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    from pipespec.bundle.bundle import Bundle

    plain, broken = servers
    names = {r["alert"] for r in yaml.safe_load(rules.read_text())["groups"][1]["rules"]}
    assert names == set(ALERTS)
    # clean traffic: training rows the bundle predicts with no warning
    rows = pd.read_parquet(trained_project / "data" / "split" / "train.parquet")
    rows = rows.drop(columns=["churned"]).iloc[:1500]
    checked = Bundle.load(bundle_dir).check(records(rows), typed=True)
    clean = [r for r, ok in zip(records(rows), checked.valid & ~checked.warned, strict=True) if ok]
    assert len(clean) >= 400
    targets = [s.url.removeprefix("http://") for s in servers]
    prometheus = Prometheus(tmp_path, rules, targets)
    try:
        # both targets scraped a few times: every series is known at zero
        deadline = time.monotonic() + 30
        while (
            not all(
                float(r["value"][1]) >= 3
                for r in prometheus.query("count_over_time(up[1m])") or [{"value": [0, 0]}]
            )
            or len(prometheus.query("up == 1")) < 2
        ):
            assert time.monotonic() < deadline, prometheus.log.read_text()
            time.sleep(0.5)
        assert prometheus.query('pipespec_requests_total{endpoint="/predict",status="500"}')
        post = plain.client.post
        for i in range(10):  # 400 records
            assert post("/predict", json=clean[i * 40 : (i + 1) * 40]).status_code == 200
        time.sleep(2.5)  # a scrape, then evaluations
        for _ in range(8):
            assert prometheus.active() == {}, prometheus.active()
            time.sleep(0.5)

        def burst_fires(name: str, burst: object) -> None:
            assert name not in prometheus.active(), (name, prometheus.active())
            burst()  # type: ignore[operator]
            deadline = time.monotonic() + 15
            while prometheus.active().get(name) != "firing":
                assert time.monotonic() < deadline, (name, prometheus.active())
                time.sleep(0.25)

        def errors() -> None:  # 30 answers of 500: the log cannot be written
            for record in clean[:30]:
                assert broken.client.post("/predict", json=record).status_code == 500

        def slow() -> None:  # 6 requests whose bodies take 0.6 s to arrive
            host, port = plain.url.removeprefix("http://").rsplit(":", 1)
            body = json.dumps(clean[0]).encode()

            def one() -> None:
                with socket.create_connection((host, int(port)), timeout=10) as sock:
                    sock.sendall(
                        b"POST /predict HTTP/1.1\r\nhost: t\r\ncontent-type: application/json"
                        + f"\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                        + body[:5]
                    )
                    time.sleep(0.6)
                    sock.sendall(body[5:])
                    assert sock.recv(4096).startswith(b"HTTP/1.1 200")

            threads = [threading.Thread(target=one) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        def refused() -> None:  # 20 requests of 5 records with a malformed age
            for i in range(20):
                bad = [{**r, "age": "old"} for r in clean[i * 5 : (i + 1) * 5]]
                assert post("/predict", json=bad).status_code == 422

        def drifted() -> None:  # 400 predictions of one record: all in one bin
            for _ in range(4):
                assert post("/predict", json=[clean[0]] * 100).status_code == 200

        def unusual() -> None:  # 200 records with an age beyond the training range
            for i in range(5):
                odd = [{**r, "age": 1000} for r in clean[i * 40 : (i + 1) * 40]]
                assert post("/predict", json=odd).status_code == 200

        for name, burst in zip(ALERTS, (errors, slow, refused, drifted, unusual), strict=True):
            burst_fires(name, burst)
        assert set(prometheus.active()) == set(ALERTS)
    finally:
        prometheus.stop()
