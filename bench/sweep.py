"""Overhead of a sweep as DVC experiments: `pipespec run -m` over N combinations (DVC's
queue, -j 1 and -j 2) against the same combinations run one by one with `pipespec run`.
Prints seconds per trial and the ratios.

    python bench/sweep.py [--rows 3000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GRID = {"model.learning_rate": ["0.05", "0.1"], "model.num_leaves": ["7", "15"]}


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    fixed = [f"dataset.rows={args.rows}", "model.num_boost_round=50"]
    combos = [
        (f"model.learning_rate={lr}", f"model.num_leaves={nl}")
        for lr in GRID["model.learning_rate"]
        for nl in GRID["model.num_leaves"]
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        subprocess.run([str(BIN / "pipespec"), "init", str(root)], check=True, capture_output=True)
        subprocess.run(
            [str(BIN / "pipespec"), "run", *fixed], cwd=root, check=True, capture_output=True
        )
        for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
            subprocess.run(cmd, cwd=root, check=True, capture_output=True)
        one_by_one = sum(timed([str(BIN / "pipespec"), "run", *fixed, *c], root) for c in combos)
        subprocess.run(
            [str(BIN / "pipespec"), "run", *fixed], cwd=root, check=True, capture_output=True
        )
        sweep_args = [f"{k}={','.join(v)}" for k, v in GRID.items()]
        results = {}
        for jobs in (1, 2):
            subprocess.run(
                [str(BIN / "dvc"), "exp", "remove", "--all-commits", "-q"],
                cwd=root,
                capture_output=True,
            )
            results[jobs] = timed(
                [str(BIN / "pipespec"), "run", "-m", *fixed, *sweep_args, "-j", str(jobs)], root
            )
        n = len(combos)
        print(f"{n} trials, {args.rows} rows each (embedded dataset)")
        print(f"one by one with `pipespec run`: {one_by_one / n:.1f}s per trial")
        for jobs, total in results.items():
            print(
                f"`pipespec run -m -j {jobs}`:       {total / n:.1f}s per trial "
                f"({total / one_by_one:.2f}x the one-by-one time)"
            )


if __name__ == "__main__":
    main()
