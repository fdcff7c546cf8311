"""Scale: the whole pipeline with compute=dask on a synthetic table larger than a comfortable
pandas frame (default 10M rows x 50 features: 45 numeric, 5 categorical, a binary target),
written as a directory of Parquet files. Records wall time per stage and peak memory: the
peak of the summed RSS of every process of the run (the stages, the Dask scheduler and
workers) and the largest single process, against the in-memory size of the frame.

    python bench/scale.py [--rows 10000000] [--files 20] [--workers 2]
                          [--memory-limit 8GiB] [--rounds 100] [--keep DIR]

The data is generated file by file (never whole in memory) with a seeded generator.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
NUMERIC, CATEGORICAL = 45, 5


def generate(folder: Path, rows: int, files: int) -> int:
    """Write ``files`` Parquet files of seeded rows; the frame's in-memory bytes."""
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True)
    size = 0
    per = -(-rows // files)
    weights = np.random.default_rng(99).normal(size=NUMERIC) / np.sqrt(NUMERIC)
    for i in range(files):
        n = min(per, rows - i * per)
        if n <= 0:
            break
        rng = np.random.default_rng([7, i])
        x = rng.normal(size=(n, NUMERIC))
        data = {f"x{j}": x[:, j] for j in range(NUMERIC)}
        score = x @ weights + 0.5 * np.sin(3 * x[:, 0]) * x[:, 1]
        for j in range(CATEGORICAL):
            codes = rng.integers(0, 10 * (j + 1), n)
            data[f"c{j}"] = pd.array(np.char.add("level_", codes.astype("str")), dtype="str")
            score += 0.15 * ((codes % 3) - 1)
        data["y"] = (score + rng.logistic(size=n) * 0.8 > 0).astype("int64")
        frame = pd.DataFrame(data)
        frame.loc[rng.random(n) < 0.01, "x0"] = np.nan
        size += int(frame.memory_usage(deep=True).sum())
        frame.to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    return size


def tree_rss(pid: int) -> tuple[int, int]:
    """(summed RSS of ``pid`` and its descendants, the largest one's RSS), in bytes."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(entry)
        children.setdefault(int(fields[1]), []).append(child)
        rss[child] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, largest, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        largest = max(largest, rss.get(p, 0))
        todo.extend(children.get(p, []))
    return total, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="8GiB")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"

    work = args.keep or Path(tempfile.mkdtemp(prefix="pipespec-scale-"))
    try:
        start = time.perf_counter()
        frame_bytes = generate(work / "data", args.rows, args.files)
        print(
            f"generated {args.rows:,} rows x {NUMERIC + CATEGORICAL} features in "
            f"{time.perf_counter() - start:.0f}s: {frame_bytes / 2**30:.2f} GiB in memory"
        )
        root = work / "proj"
        subprocess.run([str(BIN / "pipespec"), "init", str(root)], check=True, capture_output=True)
        overrides = [
            "dataset=parquet",
            f"dataset.path={work / 'data'}",
            "dataset.target=y",
            "dataset.task=binary",
            "dataset.sample.fraction=null",
            "dataset.sample.rows=null",
            "compute=dask",
            f"compute.workers={args.workers}",
            f"compute.memory_limit={args.memory_limit}",
            f"model.num_boost_round={args.rounds}",
        ]
        peak = [0, 0]
        done = threading.Event()
        log = work / "run.log"
        with open(log, "w") as fh:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [str(BIN / "pipespec"), "run", *overrides], cwd=root, stdout=fh, stderr=fh
            )

            def sample() -> None:
                while not done.is_set():
                    total, largest = tree_rss(proc.pid)
                    peak[0], peak[1] = max(peak[0], total), max(peak[1], largest)
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            code = proc.wait()
            wall = time.perf_counter() - start
            done.set()
            sampler.join()
        text = log.read_text(errors="replace")
        if code != 0:
            raise SystemExit(f"pipespec run failed ({code}):\n{text[-4000:]}")
        stages = re.findall(r"^stage (\w+) .*?\n(?:.*\n)*?  done in ([\d.]+)s", text, re.M)
        auc = re.search(r"test auc=([\d.]+)", text)
        print(f"machine: {os.cpu_count()} cores; compute=dask, {args.workers} workers")
        print(f"{'stage':<12}{'wall s':>10}")
        for name, seconds in stages:
            print(f"{name:<12}{float(seconds):>10.1f}")
        print(f"{'whole run':<12}{wall:>10.1f}   test AUC {auc.group(1) if auc else '?'}")
        print(
            f"peak memory: {peak[0] / 2**30:.2f} GiB summed over the run's processes "
            f"({peak[0] / frame_bytes:.2f}x the frame), largest process "
            f"{peak[1] / 2**30:.2f} GiB ({peak[1] / frame_bytes:.2f}x)"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
