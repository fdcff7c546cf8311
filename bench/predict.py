"""Batch prediction throughput: `pipespec predict` against a hand-written read-transform-
predict-write script, and in-process `Bundle.predict` against raw `booster.predict`, on the
same rows. Each pair is measured alternately in one run (the machine is shared and noisy:
absolute times drift, ratios measured side by side hold). Prints rows/s and ratios.

    python bench/predict.py [--rows 200000] [--repeat 3] [--bundle DIR]

Without --bundle, a project is created in a temp dir (`pipespec init`) and run once
(embedded churn data) to build one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BIN = Path(sys.executable).parent

HAND_WRITTEN = textwrap.dedent(
    """
    import json, sys
    import lightgbm as lgb
    import pandas as pd
    from pipespec.bundle.transforms import apply

    bundle, source, target = sys.argv[1:]
    transforms = json.load(open(f"{bundle}/transforms.json"))
    booster = lgb.Booster(model_file=f"{bundle}/model.txt")
    frame = pd.read_parquet(source)
    features = apply(transforms, frame)[booster.feature_name()]
    pred = booster.predict(features, num_threads=2)
    pd.DataFrame({"row": range(len(pred)), "prediction": pred}).to_parquet(target, index=False)
    """
)


def build_bundle(workdir: Path) -> Path:
    root = workdir / "proj"
    subprocess.run([str(BIN / "pipespec"), "init", str(root)], check=True, capture_output=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [str(BIN / "pipespec"), "run"], cwd=root, check=True, capture_output=True, env=env
    )
    return root / "models" / "bundle"


def make_rows(bundle: Path, rows: int, workdir: Path) -> Path:
    """Rows like the training data (the embedded generator, another seed), valid for the
    bundle's schema, as Parquet."""
    from pipespec.bundle.bundle import Bundle
    from pipespec.stages.embedded import TARGET, generate

    frame = generate(rows, seed=123).drop(columns=[TARGET])
    b = Bundle.load(bundle)
    checked = b.check(frame)
    frame = frame[checked.valid].reset_index(drop=True)
    path = workdir / "rows.parquet"
    frame.to_parquet(path, index=False)
    return path


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def median_rate(rows: int, seconds: list[float]) -> float:
    return rows / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.transforms import apply

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle_dir = args.bundle or build_bundle(work)
        source = make_rows(bundle_dir, args.rows, work)
        n = len(pd.read_parquet(source))
        script = work / "hand_written.py"
        script.write_text(HAND_WRITTEN)

        # 1. whole programs, each a fresh process (start-up included, as a user runs them)
        cli, hand = [], []
        for _ in range(args.repeat):
            cli.append(
                timed(
                    [
                        str(BIN / "pipespec"),
                        "predict",
                        "--bundle",
                        str(bundle_dir),
                        str(source),
                        str(work / "out_cli.parquet"),
                    ]
                )
            )
            hand.append(
                timed(
                    [
                        sys.executable,
                        str(script),
                        str(bundle_dir),
                        str(source),
                        str(work / "out_hand.parquet"),
                    ]
                )
            )
        ours = pd.read_parquet(work / "out_cli.parquet")["prediction"].to_numpy()
        theirs = pd.read_parquet(work / "out_hand.parquet")["prediction"].to_numpy()
        assert np.array_equal(ours, theirs), "pipespec predict and the script disagree"

        # 2. in-process, same rows in memory
        bundle = Bundle.load(bundle_dir)
        frame = pd.read_parquet(source)
        features = apply(bundle.transforms, frame)[bundle.feature_names]
        booster = bundle.booster
        threads = bundle.policy.num_threads
        inproc, raw, nocheck = [], [], []
        checked = bundle.check(frame)
        for _ in range(args.repeat):
            start = time.perf_counter()
            out = bundle.predict(frame, threads=threads)
            inproc.append(time.perf_counter() - start)
            start = time.perf_counter()
            pred = booster.predict(features, num_threads=threads)
            raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            bundle.score(checked, threads=threads)
            nocheck.append(time.perf_counter() - start)
        assert np.array_equal(out["prediction"].to_numpy(), pred)

    print(f"rows: {n:,} ({len(bundle.schema.columns)} input columns), medians of {args.repeat}")
    print(
        f"`pipespec predict` (process)      {median_rate(n, cli):>12,.0f} rows/s  "
        f"({statistics.median(cli):.2f}s)"
    )
    print(
        f"hand-written script (process)     {median_rate(n, hand):>12,.0f} rows/s  "
        f"({statistics.median(hand):.2f}s)"
    )
    print(
        f"  ratio pipespec/hand-written:    {median_rate(n, cli) / median_rate(n, hand):.2f}x "
        "throughput"
    )
    print(f"Bundle.predict (in-process)       {median_rate(n, inproc):>12,.0f} rows/s")
    print(f"  of which transform+predict only {median_rate(n, nocheck):>12,.0f} rows/s")
    print(f"raw booster.predict (features)    {median_rate(n, raw):>12,.0f} rows/s")
    print(
        f"  ratio Bundle.predict/booster:   {median_rate(n, inproc) / median_rate(n, raw):.2f}x "
        "throughput"
    )


if __name__ == "__main__":
    main()
