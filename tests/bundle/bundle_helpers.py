"""Helpers for the production tests: real `pipespec serve` processes on 127.0.0.1 (port 0:
the OS picks a free port, the server prints it) and rows as JSON records."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd

from helpers import BIN

URL = re.compile(r"on (http://127\.0\.0\.1:\d+)")


class Server:
    """A `pipespec serve` subprocess and its base URL."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        url: str,
        log: Path,
        client: httpx.Client | None = None,
    ) -> None:
        self.proc = proc
        self.url = url
        self.log = log
        self.client = client or httpx.Client(base_url=url, timeout=30)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def start_server(bundle: Path, workdir: Path, *args: str, timeout: float = 60) -> Server:
    """Start `pipespec serve --bundle BUNDLE --port 0 ARGS` and wait until /health answers.

    "serving on URL" must mean it: the first request after the line appears is answered, with
    no retry (so every server a test starts checks that)."""
    log = workdir / f"serve-{time.monotonic_ns()}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(BIN / "pipespec"), "serve", "--bundle", str(bundle), "--port", "0", *args],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"pipespec serve exited {proc.returncode}:\n{log.read_text()}")
        found = URL.search(log.read_text(encoding="utf-8", errors="replace"))
        if found:
            url = found.group(1)
            try:
                answer = httpx.get(f"{url}/health", timeout=30)
            except httpx.TransportError as exc:
                proc.kill()
                proc.wait(timeout=15)
                raise AssertionError(f"'serving on {url}' was printed, then: {exc!r}") from exc
            assert answer.status_code == 200, answer.text
            return Server(proc, url, log)
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=15)
    raise AssertionError(
        f"pipespec serve did not answer within {timeout}s (url {url}):\n{log.read_text()}"
    )


def records(frame: object) -> list[dict]:
    """Rows as JSON records: missing values as null, numpy scalars as Python numbers."""
    assert isinstance(frame, pd.DataFrame)
    out = []
    for row in frame.to_dict(orient="records"):
        out.append(
            {
                k: (None if pd.isna(v) else getattr(v, "item", lambda v=v: v)())
                for k, v in row.items()
            }
        )
    return out
