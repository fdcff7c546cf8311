"""Scale: the whole pipeline with compute=dask (and, with ``--compute spark``, on a local
standalone Spark cluster beside it) on a synthetic table larger than a comfortable
pandas frame (default 10M rows x 50 features: 45 numeric, 5 categorical, a binary target),
written as a directory of Parquet files. Records wall time per stage and peak memory: the
peak of the summed RSS of every process of the run (the stages, the Dask scheduler and
workers) and the largest single process, against the in-memory size of the frame.

    python bench/scale.py [--rows 10000000] [--files 20] [--workers 2]
                          [--memory-limit 8GiB] [--rounds 100] [--compute spark]
                          [--keep DIR]

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


def run_pipeline(
    work: Path, name: str, overrides: list[str], *, whole_tree: bool = False
) -> dict[str, object]:
    """``pipespec run`` in a new project ``work/name``: wall time per stage and in all, the
    test AUC, the peak memory. ``whole_tree``: count every process under this one (the
    Spark master and workers are this script's children, not the run's)."""
    root = work / name
    subprocess.run([str(BIN / "pipespec"), "init", str(root)], check=True, capture_output=True)
    peak = [0, 0]
    done = threading.Event()
    log = work / f"{name}.log"
    with open(log, "w") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN / "pipespec"), "run", *overrides], cwd=root, stdout=fh, stderr=fh
        )

        def sample() -> None:
            while not done.is_set():
                total, largest = tree_rss(os.getpid() if whole_tree else proc.pid)
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
        raise SystemExit(f"pipespec run ({name}) failed ({code}):\n{text[-4000:]}")
    stages = re.findall(r"^stage (\w+) .*?\n(?:.*\n)*?  done in ([\d.]+)s", text, re.M)
    auc = re.search(r"test auc=([\d.]+)", text)
    return {"stages": dict(stages), "wall": wall, "auc": auc.group(1) if auc else "?",
            "peak": peak}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="8GiB")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument(
        "--compute", choices=("dask", "spark"), default="dask",
        help="spark: also on a local standalone Spark cluster (a master and --workers 1-core "
        "workers as processes), printed beside compute=dask",
    )  # fmt: skip
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
        common = [
            "dataset=parquet",
            f"dataset.path={work / 'data'}",
            "dataset.target=y",
            "dataset.task=binary",
            "dataset.sample.fraction=null",
            "dataset.sample.rows=null",
            f"model.num_boost_round={args.rounds}",
        ]
        dask = [
            "compute=dask",
            f"compute.workers={args.workers}",
            f"compute.memory_limit={args.memory_limit}",
        ]
        results = {"dask": run_pipeline(work, "dask", [*common, *dask])}
        if args.compute == "spark":
            from pipespec.stages.spark import standalone

            memory = args.memory_limit.lower().removesuffix("ib").removesuffix("b")
            with standalone(args.workers, work / "spark-cluster", memory=memory) as master:
                spark = [
                    "compute=spark",
                    f"compute.master={master}",
                    f"compute.executors={args.workers}",
                    f"compute.executor_memory={memory}",
                ]
                results["spark"] = run_pipeline(work, "spark", [*common, *spark],
                                                whole_tree=True)  # fmt: skip
        print(f"machine: {os.cpu_count()} cores; {args.workers} workers (executors) of 1 core")
        names = list(results)
        print(f"{'stage':<12}" + "".join(f"{'wall s ' + n:>16}" for n in names))
        stages = list(dict.fromkeys(k for r in results.values() for k in r["stages"]))  # type: ignore[attr-defined]
        for stage in stages:
            cells = [results[n]["stages"].get(stage, "-") for n in names]  # type: ignore[attr-defined]
            print(f"{stage:<12}" + "".join(f"{float(c) if c != '-' else c:>16}" for c in cells))
        print(f"{'whole run':<12}" + "".join(f"{results[n]['wall']:>16.1f}" for n in names))
        print(f"{'test AUC':<12}" + "".join(f"{results[n]['auc']:>16}" for n in names))
        for n in names:
            total, largest = results[n]["peak"]  # type: ignore[misc]
            print(
                f"peak memory ({n}): {total / 2**30:.2f} GiB summed over the run's processes "
                f"({total / frame_bytes:.2f}x the frame), largest process "
                f"{largest / 2**30:.2f} GiB ({largest / frame_bytes:.2f}x)"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
