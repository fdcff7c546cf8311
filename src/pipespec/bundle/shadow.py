"""Shadow serving: a second bundle scores every request off the response path, and both
predictions are logged side by side; ``report`` compares them (agreement, PSI, latencies).

The served process only puts each answered request on a bounded queue (a few microseconds);
a writer thread hands it, as a JSON line, to a separate worker process
(``python -m pipespec.bundle.shadow BUNDLE LOG``) that scores it with the shadow bundle
through the same ``predict_records`` as ``/predict`` and appends the log. A separate process,
at a lower scheduling priority, so the shadow's work never holds the served process' GIL; when
the shadow falls behind, requests are dropped from the shadow (counted), never delayed.

Log lines (JSON): ``time``, ``request`` (a counter), ``record`` (index in the request),
``input``, ``primary`` and ``shadow``, each ``{"bundle", "output", "ms"}`` (``ms``: the time
that bundle took to check and score the whole request), or ``{"bundle", "error"}`` when the
shadow refused the record.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from pipespec.core.errors import DataError

QUEUE_SIZE = 10_000  # requests waiting for the shadow; beyond it they are dropped
NICE = 10  # the worker's scheduling priority below the server's


class Shadow:
    """The served process' side: queue, writer thread, worker process."""

    def __init__(
        self, bundle_dir: str | os.PathLike[str], log: str | os.PathLike[str], primary: str
    ) -> None:
        self.log = Path(log)
        self.primary = primary[:12]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.dropped = 0
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(QUEUE_SIZE)
        self._requests = 0
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "pipespec.bundle.shadow", str(bundle_dir), str(self.log)],
            stdin=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._writer = threading.Thread(target=self._write, name="shadow-writer", daemon=True)
        self._writer.start()

    def submit(
        self,
        records: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        seconds: float,
    ) -> None:
        """Hand one answered request to the shadow; never blocks (``serve``'s observer)."""
        self._requests += 1
        try:
            self._queue.put_nowait((self._requests, records, outputs, seconds, self.primary))
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        stdin = self._worker.stdin
        assert stdin is not None
        while (item := self._queue.get()) is not None:
            number, records, outputs, seconds, primary = item
            line = json.dumps(
                {
                    "request": number,
                    "records": records,
                    "outputs": outputs,
                    "ms": seconds * 1000,
                    "bundle": primary,
                },
                default=str,
            )
            try:
                stdin.write(line + "\n")
                stdin.flush()
            except (BrokenPipeError, ValueError):  # the worker is gone: keep serving
                self.dropped += 1
        with contextlib.suppress(BrokenPipeError):
            stdin.close()

    def close(self, timeout: float = 30) -> None:
        """Let the worker finish what is queued, then stop it."""
        self._queue.put(None)
        self._writer.join(timeout)
        try:
            self._worker.wait(timeout)
        except subprocess.TimeoutExpired:
            self._worker.kill()
            self._worker.wait()


def work(bundle_dir: str, log_path: str, lines: Iterable[str]) -> None:
    """The worker: score each request with the shadow bundle, log both predictions."""
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.serve import _Reject, _warm_up, predict_records

    bundle = Bundle.load(bundle_dir)
    _warm_up(bundle)
    sha = bundle.sha[:12]
    with open(log_path, "a", encoding="utf-8") as log:
        for line in lines:
            request = json.loads(line)
            records = request["records"]
            started = time.perf_counter()
            try:
                outputs, _ = predict_records(bundle, records, single=len(records) == 1)
                shadow: list[dict[str, Any]] = [{"output": o} for o in outputs]
            except _Reject as exc:
                errors = {e["record"]: e["message"] for e in exc.errors}
                shadow = [{"error": errors.get(i, exc.message)} for i in range(len(records))]
            ms = (time.perf_counter() - started) * 1000
            _log(log, request, shadow, sha, ms)


def _log(
    log: TextIO, request: dict[str, Any], shadow: list[dict[str, Any]], sha: str, ms: float
) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i, (record, output) in enumerate(zip(request["records"], request["outputs"], strict=True)):
        entry = {
            "time": stamp,
            "request": request["request"],
            "record": i,
            "input": record,
            "primary": {"bundle": request["bundle"], "output": output, "ms": request["ms"]},
            "shadow": {"bundle": sha, **shadow[i], "ms": ms},
        }
        log.write(json.dumps(entry, default=str) + "\n")
    log.flush()


# -- the report -----------------------------------------------------------------------------


def report(path: str | os.PathLike[str], *, bins: int = 10, tolerance: float = 0.01) -> dict:
    """Agreement of the two bundles, PSI between their predictions, and their latencies.

    Agreement: the same label (classification), or values within ``tolerance`` of each other
    relative to the larger (regression). PSI: over ``bins`` quantile bins of the primary's
    scores (probability of the positive class, or the value), or over the labels
    (multiclass). Latencies: per request, in milliseconds, for each bundle's check and score.
    """
    import numpy as np

    from pipespec.bundle.profile import psi

    entries = list(_read(Path(path)))
    paired = [e for e in entries if "output" in e["shadow"]]
    refused = len(entries) - len(paired)
    if not paired:
        raise DataError(f"{path}: no record both bundles predicted ({refused} refused)")
    first = paired[0]["primary"]["output"]
    kind = "value" if "value" in first else ("probability" if "probability" in first else "label")
    agreement_on = f"value within {tolerance:g}" if kind == "value" else "label"
    a = [e["primary"]["output"] for e in paired]
    b = [e["shadow"]["output"] for e in paired]
    if kind == "value":
        x, y = np.array([o["value"] for o in a]), np.array([o["value"] for o in b])
        scale = np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-12)
        agree = np.abs(x - y) <= tolerance * scale
    else:
        agree = np.array([p["label"] == q["label"] for p, q in zip(a, b, strict=True)])
    if kind == "label":
        labels = sorted({str(o["label"]) for o in a + b})
        ref = np.array([sum(str(o["label"]) == k for o in a) for k in labels], float)
        cur = np.array([sum(str(o["label"]) == k for o in b) for k in labels], float)
    else:
        x, y = np.array([o[kind] for o in a]), np.array([o[kind] for o in b])
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        ref = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
        cur = np.bincount(np.searchsorted(edges, y, side="right"), minlength=len(edges) + 1)
    requests: dict[int, tuple[float, float]] = {}
    for e in entries:
        requests.setdefault(e["request"], (e["primary"]["ms"], e["shadow"]["ms"]))
    primary_ms = np.array([p for p, _ in requests.values()])
    shadow_ms = np.array([s for _, s in requests.values()])
    return {
        "log": str(path),
        "bundles": {k: paired[0][k]["bundle"] for k in ("primary", "shadow")},
        "records": len(entries),
        "requests": len(requests),
        "compared": len(paired),
        "refused_by_shadow": refused,
        "agreement_on": agreement_on,
        "agreement": float(agree.mean()),
        "psi_on": kind,
        "psi": psi(np.asarray(ref, float), np.asarray(cur, float)),
        "latency_ms": {
            "primary": _quantiles(primary_ms),
            "shadow": _quantiles(shadow_ms),
        },
    }


def _quantiles(values: Any) -> dict[str, float]:
    import numpy as np

    return {f"p{q}": round(float(np.percentile(values, q)), 4) for q in (50, 90, 99)} | {
        "mean": round(float(np.mean(values)), 4)
    }


def _read(path: Path) -> Iterable[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"shadow log {path} does not exist")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if not all(isinstance(entry[k]["ms"], int | float) for k in ("primary", "shadow")):
                    raise TypeError("'ms' is not a number")
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}, line {n}: not a shadow log entry ({exc})") from None
            yield entry


if __name__ == "__main__":  # the worker process
    with contextlib.suppress(AttributeError, OSError):
        os.nice(NICE)
    work(sys.argv[1], sys.argv[2], sys.stdin)
