"""What ``pipespec serve`` tells Prometheus at ``GET /metrics`` (prometheus-client).

Every series is labelled with the served bundle's SHA-256 (``bundle``):

| series | labels | what |
| --- | --- | --- |
| ``pipespec_requests_total`` | endpoint, status | requests answered |
| ``pipespec_request_duration_seconds`` | endpoint | latency histogram |
| ``pipespec_records_total`` | | records predicted |
| ``pipespec_input_refusals_total`` | field, reason | refused values (malformed, or strict) |
| ``pipespec_input_warnings_total`` | field, reason | unusual values predicted with a warning |
| ``pipespec_feature_values_total`` | field, kind | per column: missing, out_of_range, unseen |
| ``pipespec_prediction_bucket_total`` | bin | predictions on the profile's bins (index/class) |

Every series an exported alert reads exists at zero from the server's start (each status
an endpoint can answer, each field with each reason it can be refused or flagged for, each
column's kinds, each prediction bin), so ``rate()`` and ``increase()`` see an incident's
first burst as a rise from zero, not as a new series' first sample (which they ignore).

``pipespec export alerts`` writes alerting rules over these names. With several worker
processes (``pipespec serve --workers N``) each worker writes its counts to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, set up before the
workers start) and ``/metrics`` adds them up, whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from pipespec.bundle.columns import SMALL
from pipespec.bundle.inputs import (
    MALFORMED,
    NOT_WHOLE,
    NULL,
    OUT_OF_RANGE,
    UNSEEN,
    Checked,
    refused_reasons,
)

if TYPE_CHECKING:
    import numpy as np

    from pipespec.bundle.bundle import Bundle

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# request latency buckets, in seconds: a loopback request is about a millisecond
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
OTHER = "__other__"  # a class the reference profile lumps together
KINDS = {OUT_OF_RANGE: "out_of_range", UNSEEN: "unseen"}
# what each endpoint can answer: every (endpoint, status) series exists from the start
STATUSES = {
    "/predict": (200, 400, 408, 413, 415, 422, 499, 500),
    "/health": (200,),
    "/metadata": (200,),
    "/metrics": (200,),
}


class ServeMetrics:
    """The service's counters for one bundle."""

    def __init__(self, bundle: Bundle) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # in multiprocess mode the values live in files; the registry renders them
        self.registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self.sha = bundle.sha
        bundle_label = ["bundle"]

        def counter(name: str, doc: str, labels: list[str]) -> Any:
            return Counter(name, doc, [*labels, *bundle_label], registry=self.registry)

        self._requests = counter(
            "pipespec_requests", "Requests answered, by endpoint and status.",
            ["endpoint", "status"],
        )  # fmt: skip
        self._latency = Histogram(
            "pipespec_request_duration_seconds",
            "Request latency in seconds, by endpoint.",
            ["endpoint", *bundle_label],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._records = counter("pipespec_records", "Records predicted.", [])
        self._refusals = counter(
            "pipespec_input_refusals", "Refused input values, by field and reason.",
            ["field", "reason"],
        )  # fmt: skip
        self._warnings = counter(
            "pipespec_input_warnings", "Unusual input values predicted with a warning.",
            ["field", "reason"],
        )  # fmt: skip
        self._values = counter(
            "pipespec_feature_values",
            "Input values per column that are missing, out of range or unseen categories.",
            ["field", "kind"],
        )
        self._bins = counter(
            "pipespec_prediction_bucket",
            "Predictions on the reference profile's bins (index; class for multiclass).",
            ["bin"],
        )
        prediction = bundle.profile.get("prediction") or {}
        self._edges = prediction.get("edges")
        self._classes = set((prediction.get("counts") or {}) if self._edges is None else ())
        self._children: dict[tuple[Any, ...], Any] = {}
        for label in self._bin_labels(prediction):  # every bin from the start: PSI needs 0s
            self._child(self._bins, label)
        for col in bundle.schema.names:
            for kind in ("missing", "out_of_range", "unseen"):
                self._child(self._values, col, kind)
        for endpoint, statuses in STATUSES.items():
            self._child(self._latency, endpoint)
            for status in statuses:
                self._child(self._requests, endpoint, str(status))
        refused = refused_reasons(bundle.policy.strict)
        unusual = (OUT_OF_RANGE, UNSEEN, NULL, NOT_WHOLE)
        for col in bundle.schema.names:
            for reason in sorted(MALFORMED | refused):
                self._child(self._refusals, col, reason)
            for reason in unusual:
                if reason not in refused:
                    self._child(self._warnings, col, reason)
        self._records.labels(self.sha)
        self._multiclass = bundle.task == "multiclass"
        self._labels = [str(c) for c in bundle.classes]

    def _bin_labels(self, prediction: dict[str, Any]) -> list[str]:
        if self._edges is not None:
            return [str(i) for i in range(len(self._edges) + 1)]
        return [*map(str, self._classes), OTHER] if self._classes else []

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels, self.sha)
        return child

    # --- what the service reports -------------------------------------------------------

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """One answered request."""
        self._child(self._requests, endpoint, str(status)).inc()
        self._child(self._latency, endpoint).observe(seconds)

    def checked(self, checked: Checked, scores: np.ndarray | None) -> None:
        """The records of one request: problems by field and reason, missing values per
        column, and (when predicted) the predictions on the profile's bins."""
        import numpy as np

        if checked.problems:
            for (field, reason), count in checked.counts("refused").items():
                self._child(self._refusals, field, reason).inc(count)
                if reason in KINDS:
                    self._child(self._values, field, KINDS[reason]).inc(count)
            for (field, reason), count in checked.counts("warning").items():
                self._child(self._warnings, field, reason).inc(count)
                if reason in KINDS:
                    self._child(self._values, field, KINDS[reason]).inc(count)
        small = checked.rows <= SMALL
        usual = checked.usual  # columns with nothing missing (nor noted), as the check found
        for name, values in checked.work.items():
            if name in usual:
                continue
            if small and values.dtype.kind == "f":  # a few values: cheaper one by one
                missing = sum(1 for v in values.tolist() if v != v)
            elif values.dtype.kind == "f":
                missing = int(np.isnan(values).sum())
            elif values.dtype.kind == "M":
                missing = int(np.isnat(values).sum())
            else:
                missing = sum(1 for v in values if v is None)
            if missing:
                self._child(self._values, name, "missing").inc(missing)
        if scores is None or not len(scores):
            return
        self._child(self._records).inc(len(scores))
        if self._multiclass:
            names = np.asarray(self._labels, dtype=object)[scores.argmax(axis=1)]
            for label in names.tolist():
                self._child(self._bins, label if label in self._classes else OTHER).inc()
        elif self._edges is not None and small:
            edges = self._edges
            for v in scores.tolist():  # np.searchsorted(side="left"), one value at a time
                self._child(self._bins, str(len(edges) if v != v else bisect_left(edges, v))).inc()
        elif self._edges is not None:
            bins = np.searchsorted(np.asarray(self._edges, dtype="float64"), scores, side="left")
            for b, count in zip(*np.unique(bins, return_counts=True), strict=True):
                self._child(self._bins, str(int(b))).inc(int(count))

    def render(self) -> bytes:
        """The exposition text of every series (all workers' in multiprocess mode)."""
        from prometheus_client import CollectorRegistry, generate_latest

        if self.registry is not None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
