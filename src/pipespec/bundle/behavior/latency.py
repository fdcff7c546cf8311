"""A latency budget: ``Bundle.predict`` timed on single records and on batches of the data's
valid rows, its p50 and p99 against the bounds given (null bounds: measured only)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pipespec.bundle.behavior.report import Check
from pipespec.bundle.behavior.rows import Rows

if TYPE_CHECKING:
    import pandas as pd

WARM_UP = 3  # calls not timed first: caches, LightGBM's first call


class Latency:
    """The ``behavior.latency`` checks."""

    kind = "latency"

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def run(self) -> None:
        import numpy as np

        rows = self.rows
        cfg = rows.spec.latency
        if not cfg.enabled:
            return
        inputs = rows.frame.drop(columns=[rows.target], errors="ignore")
        valid = inputs.loc[rows.base.index] if len(rows.base) else inputs
        rng = rows.rng("latency", "rows")
        single = valid.iloc[rng.integers(0, len(valid), cfg.records)]
        batch = valid.iloc[rng.integers(0, len(valid), cfg.batch_rows)]
        records = [single.iloc[[i]] for i in range(len(single))]
        for label, frames, n in (
            ("single", records, 1),
            ("batch", [batch] * cfg.batches, cfg.batch_rows),
        ):
            times = self.timed(frames)
            p50, p99 = (float(np.percentile(times, q)) for q in (50, 99))
            rows.report.latency[label] = {
                "rows": n,
                "calls": len(times),
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
            }
            what = "one record" if label == "single" else f"a batch of {n:,} rows"
            for q, value in (("p50", p50), ("p99", p99)):
                bound = getattr(cfg, f"{label}_{q}_ms")
                if bound is not None:
                    name, subject = f"{label}_{q}", f"Bundle.predict, {what}"
                    passed = value <= bound
                    rows.add(
                        Check(self.kind, name, subject, f"{q}_ms", round(value, 3), "<=", bound,
                              passed)
                    )  # fmt: skip

    def timed(self, frames: list[pd.DataFrame]) -> list[float]:
        """Milliseconds of each ``Bundle.predict`` call, after the warm-up calls."""
        bundle, threads = self.rows.bundle, self.rows.threads
        for frame in frames[:WARM_UP]:
            bundle.predict(frame, on_invalid="skip", threads=threads)
        out = []
        for frame in frames:
            start = time.perf_counter()
            bundle.predict(frame, on_invalid="skip", threads=threads)
            out.append((time.perf_counter() - start) * 1000)
        return out
