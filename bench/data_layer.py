"""The data layer's stages on a large table: rows/s and peak memory of `load`, `validate`
(when the pipeline has it), `split` and `featurize`, each a whole process as DVC runs it,
with peak memory relative to the in-memory size of the frame.

    python bench/data_layer.py [--rows 1000000] [--numeric 45] [--categorical 5]
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


def make_frame(rows: int, numeric: int, categorical: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    data = {f"x{i}": rng.normal(size=rows) for i in range(numeric)}
    for i in range(categorical):
        levels = np.array([f"level_{k}" for k in range(20 * (i + 1))])
        data[f"c{i}"] = pd.array(levels[rng.integers(0, len(levels), rows)], dtype="str")
    data["y"] = (rng.random(rows) < 0.3).astype("int64")
    frame = pd.DataFrame(data)
    frame.loc[rng.random(rows) < 0.02, "x0"] = np.nan
    return frame


MAKE = """
import sys
from data_layer import make_frame
rows, numeric, categorical, path = sys.argv[1:]
frame = make_frame(int(rows), int(numeric), int(categorical))
frame.to_parquet(path, index=False)
print(frame.memory_usage(deep=True).sum())
"""


def run_stage(root: Path, name: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (bytes) of `pipespec stage NAME` in a fresh process."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN / "pipespec"), "stage", name], cwd=root, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the max so far
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"stage {name} failed:\n{err.read().decode()}")
    return wall, usage.ru_maxrss * 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--numeric", type=int, default=45)
    parser.add_argument("--categorical", type=int, default=5)
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        subprocess.run([str(BIN / "pipespec"), "init", str(root)], check=True, capture_output=True)
        # The table is made in a child process: a stage's peak (wait4's ru_maxrss) counts
        # the pages of the process it was forked from, so this one must stay small.
        made = subprocess.run(
            [sys.executable, "-c", MAKE, str(args.rows), str(args.numeric),
             str(args.categorical), str(root / "big.parquet")],
            cwd=Path(__file__).parent, check=True, capture_output=True, text=True,
        )  # fmt: skip
        size = float(made.stdout)
        subprocess.run(
            [
                str(BIN / "pipespec"),
                "compose",
                "dataset=parquet",
                "dataset.path=big.parquet",
                "dataset.target=y",
                "dataset.task=binary",
                "env=prod",
            ],
            cwd=root,
            check=True,
            capture_output=True,
        )
        stages = ["load", "validate", "split", "featurize"]
        dvc_yaml = (root / "dvc.yaml").read_text()
        print(
            f"frame: {args.rows:,} rows x {args.numeric + args.categorical} columns, "
            f"{size / 2**20:.0f} MiB in memory"
        )
        print(f"{'stage':<10} {'wall s':>8} {'rows/s':>12} {'peak RSS MiB':>13} {'peak/frame':>11}")
        for name in stages:
            if f"\n  {name}:\n" not in dvc_yaml:
                continue
            wall, peak = run_stage(root, name)
            print(
                f"{name:<10} {wall:>8.2f} {args.rows / wall:>12,.0f} {peak / 2**20:>13.0f} "
                f"{peak / size:>10.2f}x"
            )
        print(
            "peak RSS is each stage process's own maximum resident memory, interpreter and "
            "libraries included"
        )


if __name__ == "__main__":
    main()
