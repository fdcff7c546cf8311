"""Alert webhooks: ``pipespec monitor --notify URL`` POSTs the alerts as JSON (standard
library only, so a serving image needs nothing more)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from pipespec.core.errors import ConfigError

TIMEOUT = 10.0  # seconds


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; a ConfigError naming --notify otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"--notify: '{url}' is not an http(s) URL",
            hint="Give the webhook's address, e.g. https://hooks.example.com/T000/B000.",
        )
    return url


def payload(report: dict[str, Any]) -> dict[str, Any]:
    """What the webhook receives: the alerts, and enough to find the full report."""
    return {
        "source": "pipespec monitor",
        "status": report["status"],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "alerts": report["alerts"],
        "bundle": report["bundle"],
        "current": report["current"],
        "rows": report["rows"],
        "drifting_features": {
            f["name"]: f.get("psi") for f in report["features"] if f.get("drift")
        },
        "prediction_psi": report["prediction"].get("psi"),
        "text": f"pipespec monitor: {len(report['alerts'])} drift alert(s) on "
        f"{report['current']}: " + "; ".join(report["alerts"]),
    }


def send(url: str, report: dict[str, Any], *, timeout: float = TIMEOUT) -> int:
    """POST the payload to ``url``; the HTTP status. Raises OSError (``urllib.error``) when
    the webhook cannot be reached or answers with an error."""
    body = json.dumps(payload(report), allow_nan=False, default=str).encode()
    request = urllib.request.Request(
        check_url(url),
        data=body,
        headers={"Content-Type": "application/json", "User-Agent": "pipespec-monitor"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)
