"""Throughput and peak memory of the validate stage on a wide table (default 1M rows x 50
columns: 30 float, 10 int, 10 text), with a pandera YAML schema checking every column (dtype,
nullability, range or allowed values).

Measured in-process, each case in a fresh Python process so that peaks do not mix:

- ``pandera alone``: ``DataFrameSchema.validate(frame, lazy=True)``, the reference;
- ``validate()``: pipespec's checks (frame in memory, no I/O), clean data, policy fail;
- ``validate() 1% bad``: 1% of rows break a range, policy quarantine (extra pass on the rest);
- ``stage``: what ``pipespec stage validate`` does: read Parquet, validate, write the three
  outputs.

pandera's first validation in a process has a start-up cost (backend registration, lazy
imports) that every stage process pays once; it is timed apart ("first call", on 100 rows),
so that rows/s is the cost per row. Peak memory is reported against the frame's in-memory
size (``memory_usage(deep=True)``): ``rss`` is the process's peak resident memory during the
case minus its resident memory before it (Linux: VmHWM after resetting it through
/proc/self/clear_refs; it sees pyarrow's buffers too), ``traced`` the peak of Python/numpy
allocations (tracemalloc).

    python bench/validate.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FLOATS, INTS, TEXTS = 30, 10, 10
CATEGORIES = [f"level_{i:02d}" for i in range(12)]

CASE = r"""
import json, sys, time, tracemalloc
from pathlib import Path
import pandas as pd
import pandera.pandas  # imported before measuring: start-up is not what is measured
sys.path.insert(0, {bench!r})
from validate import case_run
print(json.dumps(case_run(Path({root!r}), {case!r})))
"""


def make_frame(rows: int, *, bad_fraction: float = 0.0, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(FLOATS):
        col = rng.normal(100, 15, rows)
        col[rng.random(rows) < 0.01] = np.nan
        data[f"f{i}"] = col
    for i in range(INTS):
        data[f"i{i}"] = rng.integers(0, 1000, rows)
    codes = rng.integers(0, len(CATEGORIES), (TEXTS, rows))
    levels = np.array(CATEGORIES, dtype=object)
    for i in range(TEXTS):
        data[f"t{i}"] = pd.array(levels[codes[i]], dtype="str")
    data["y"] = rng.integers(0, 2, rows)
    frame = pd.DataFrame(data)
    if bad_fraction:
        bad = rng.random(rows) < bad_fraction
        frame.loc[bad, "i0"] = -1
    return frame


def schema_text() -> str:
    lines = ["columns:"]
    for i in range(FLOATS):
        rng = "in_range: {min_value: -1000.0, max_value: 1000.0}"
        lines.append(f"  f{i}: {{dtype: float64, nullable: true, {rng}}}")
    for i in range(INTS):
        lines.append(f"  i{i}: {{dtype: int64, in_range: {{min_value: 0, max_value: 999}}}}")
    for i in range(TEXTS):
        lines.append(f"  t{i}: {{dtype: str, isin: [{', '.join(CATEGORIES)}]}}")
    lines.append("  y: {dtype: int64, isin: [0, 1]}")
    lines.append("metadata: {pipespec: {rows: {min: 1}}}")
    return "\n".join(lines) + "\n"


def _rss_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def case_run(root: Path, case: str) -> dict[str, float]:
    """One measurement, in this (fresh) process."""
    import time
    import tracemalloc

    from pipespec.stages.context import ParamsView, StageContext
    from pipespec.stages.dataschema import load
    from pipespec.stages.parquet import read_table
    from pipespec.stages.schema_engine import validate
    from pipespec.stages.validate import run

    schema = load(root / "schema.yaml")
    source = root / ("bad.parquet" if case == "bad" else "clean.parquet")
    if case == "stage":  # the stage reads the file itself: only a few rows here
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(source)
        frame = next(parquet.iter_batches(batch_size=100)).to_pandas()
        rows, size = parquet.metadata.num_rows, 0
    else:
        frame, _ = read_table(source)
        rows, size = len(frame), int(frame.memory_usage(deep=True).sum())
    policy = "quarantine" if case == "bad" else "fail"
    params = {
        "schema": {
            "name": "bench",
            "path": "schema.yaml",
            "policy": policy,
            "max_failure_fraction": 0.05,
            "coerce": False,
        },
        "dataset": {"target": "y", "drop": []},
    }
    # pandera's first validation registers its backends and imports more (paid once per
    # stage process): timed apart, so that rows/s is the cost per row.
    warm = time.perf_counter()
    validate(frame.head(100).copy(), schema, target="y", task="binary")
    warm = time.perf_counter() - warm
    base = _status("VmRSS")
    resettable = _rss_reset()
    tracemalloc.start()
    start = time.perf_counter()
    if case == "pandera":
        schema.pandera.validate(frame, lazy=True)
    elif case == "stage":
        ctx = StageContext(
            "validate",
            ParamsView(params, ("schema", "dataset.target", "dataset.drop"), "validate"),
            {"data": source},
            {n: root / "out" / f"{n}.bin" for n in ("data", "report", "quarantine")},
            root,
        )
        (root / "out").mkdir(exist_ok=True)
        run(ctx)
    else:
        result = validate(
            frame,
            schema,
            target="y",
            task="binary",
            policy=policy,
            max_failure_fraction=0.05,
        )
        assert result.outcome == ("quarantined" if case == "bad" else "passed"), result.reason
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = _status("VmHWM") if resettable else 0
    return {
        "rows": rows,
        "seconds": seconds,
        "frame_bytes": size,
        "rss_extra": max(peak - base, 0) if resettable else float("nan"),
        "traced": traced,
        "first_call": warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from pipespec.stages.parquet import write_table

    with tempfile.TemporaryDirectory(prefix="pipespec-bench-") as tmp:
        root = Path(tmp)
        meta = {"target": "y", "task": "binary", "weight": None}
        write_table(make_frame(args.rows), root / "clean.parquet", meta)
        write_table(make_frame(args.rows, bad_fraction=0.01), root / "bad.parquet", meta)
        (root / "schema.yaml").write_text(schema_text())
        bench = str(Path(__file__).resolve().parent)
        print(
            f"validate: {args.rows:,} rows x {FLOATS + INTS + TEXTS + 1} columns, "
            f"median of {args.repeat} runs, each in a fresh process"
        )
        size = 0
        for case, label in (
            ("pandera", "pandera alone, clean"),
            ("clean", "validate() clean"),
            ("bad", "validate() 1% bad"),
            ("stage", "stage (read+write)"),
        ):
            runs = []
            for _ in range(args.repeat):
                code = CASE.format(bench=bench, root=str(root), case=case)
                proc = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=False
                )
                if proc.returncode != 0:
                    sys.exit(f"{label} failed:\n{proc.stderr}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            seconds = statistics.median(r["seconds"] for r in runs)
            size = runs[0]["frame_bytes"] or size  # the stage case reuses the others' size
            rss = statistics.median(r["rss_extra"] for r in runs)
            traced = statistics.median(r["traced"] for r in runs)
            warm = statistics.median(r["first_call"] for r in runs)
            print(
                f"  {label:<22} {args.rows / seconds:>12,.0f} rows/s  {seconds:6.2f} s  "
                f"peak extra rss {rss / size:4.2f}x frame  traced {traced / size:4.2f}x frame  "
                f"(frame {size / 2**20:,.0f} MiB; first call {warm:.2f} s)"
            )


if __name__ == "__main__":
    main()
