"""Shadow serving's cost on the response path: single-record p50/p99 latency of
`pipespec serve --bundle A` against `pipespec serve --bundle A --shadow B`, on 127.0.0.1,
in interleaved rounds (the machine's noise hits both alike). The target: p50 at most 1.10x.

    python bench/shadow.py [--requests 2000] [--rounds 3] [--bundle DIR] [--shadow DIR]

Without --bundle, a project is created in a temp dir and run once to build one; without
--shadow, the shadow is a copy of the bundle (the same work as a real candidate model).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # see bench/http.py


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--shadow", type=Path, default=None)
    args = parser.parse_args()
    http = _module("http")

    from pipespec.stages.embedded import TARGET, generate

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = args.bundle or _module("predict").build_bundle(work)
        shadow = args.shadow or shutil.copytree(bundle, work / "shadow")
        row = json.loads(generate(50, seed=5).drop(columns=[TARGET]).to_json(orient="records"))
        record = row[0]
        serve = [str(BIN / "pipespec"), "serve", "--bundle", str(bundle), "--port", "0"]
        configs = {
            "alone": serve,
            "with shadow": [*serve, "--shadow", str(shadow), "--shadow-log", str(work / "s.log")],
        }
        p50: dict[str, list[float]] = {name: [] for name in configs}
        p99: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(args.rounds):
            for name, argv in configs.items():
                proc, url = http.start(argv, work / "serve.log")
                try:
                    latencies = http.sequential(url, record, args.requests)
                finally:
                    proc.terminate()
                    proc.wait(timeout=60)
                p50[name].append(http.pct(latencies, 0.5))
                p99[name].append(http.pct(latencies, 0.99))
        logged = len((work / "s.log").read_text(encoding="utf-8").splitlines())

    print(f"{args.requests} single-record requests x {args.rounds} rounds, 127.0.0.1, keep-alive")
    print(f"{'':14} {'p50 ms (median of rounds)':>26} {'p99 ms':>8}")
    for name in configs:
        print(f"{name:14} {statistics.median(p50[name]):26.3f} {statistics.median(p99[name]):8.3f}")
    ratio = statistics.median(p50["with shadow"]) / statistics.median(p50["alone"])
    per_round = [s / a for s, a in zip(p50["with shadow"], p50["alone"], strict=True)]
    print(
        f"ratio with shadow / alone: p50 {ratio:.3f}x (per round: "
        + ", ".join(f"{r:.3f}" for r in per_round)
        + f"); target <= 1.10x; {logged:,} records logged by the shadow"
    )


if __name__ == "__main__":
    main()
