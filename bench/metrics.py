"""What the Prometheus instrumentation of `pipespec serve` adds to a request: the same
single-record prediction with and without the metrics (counters by field and reason,
prediction bins, the latency histogram), alternated in one process, medians of many.

    python bench/metrics.py [--requests 5000] [--bundle DIR]

Without --bundle, a project is created in a temp dir and run once to build one. The target
is at most 0.1 ms added to the p50 latency of a request.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# bench/http.py is named like the standard library's `http`: keep this folder off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args()

    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.prometheus import ServeMetrics
    from pipespec.bundle.serve import predict_records
    from pipespec.stages.embedded import TARGET, generate

    spec = importlib.util.spec_from_file_location("bench_predict", HERE / "predict.py")
    assert spec is not None
    assert spec.loader is not None
    bench_predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_predict)

    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = args.bundle or bench_predict.build_bundle(Path(tmp))
        bundle = Bundle.load(bundle_dir)
        rows = generate(200, seed=5).drop(columns=[TARGET])
        row = rows[bundle.check(rows).valid].iloc[0]
        record = {
            k: (None if v != v else getattr(v, "item", lambda v=v: v)()) for k, v in row.items()
        }
        metrics = ServeMetrics(bundle)
        plain, measured = [], []
        for _ in range(200):  # warm up both
            predict_records(bundle, [record])
            predict_records(bundle, [record], metrics=metrics)
        for _ in range(args.requests):
            start = time.perf_counter()
            predict_records(bundle, [record])
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            predict_records(bundle, [record], metrics=metrics)
            metrics.request("/predict", 200, time.perf_counter() - start)
            measured.append(time.perf_counter() - start)
    p50, m50 = statistics.median(plain) * 1e3, statistics.median(measured) * 1e3
    print(f"{args.requests} single-record predictions, in-process, alternated")
    print(f"without metrics  p50 {p50:.3f} ms")
    print(f"with metrics     p50 {m50:.3f} ms")
    print(f"added by the metrics: {m50 - p50:+.3f} ms at p50 (target <= 0.1 ms)")


if __name__ == "__main__":
    main()
