"""Batch prediction throughput: `pipespec predict` against a hand-written read-transform-
predict-write script, and in-process `Bundle.predict` against raw `booster.predict`, on the
same rows. Each pair is measured alternately in one run (the machine is shared and noisy:
absolute times drift, ratios measured side by side hold). Prints rows/s and ratios.

    python bench/predict.py [--rows 200000] [--repeat 3] [--bundle DIR]
                            [--engine both|lightgbm] [--compiled DIR]

Without --bundle, a project is created in a temp dir (`pipespec init`) and run once
(embedded churn data) to build one. ``--engine both`` (the default) also measures the
compiled-tree engine (``production.engine: lleaves``, ``pipespec[compiled]``) side by side
with LightGBM, in batch and for one row: ``--compiled`` reuses a compile stage's
``models/compiled`` (else the model is compiled here first, and the time it took printed).
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


def compile_cache(bundle_dir: Path, cache: Path) -> float:
    """Compile the bundle's model with lleaves into the cache directory ``cache`` (as the
    compile stage does, without its check); the seconds it took."""
    import hashlib
    import json

    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.engine import KEY, OBJECT, expected_key, load

    bundle = Bundle.load(bundle_dir)
    cache.mkdir(parents=True)
    start = time.perf_counter()
    load(bundle, cache / OBJECT)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256((cache / OBJECT).read_bytes()).hexdigest()
    stored = {"engine": "lleaves", "key": expected_key(bundle), "object_sha256": digest}
    (cache / KEY).write_text(json.dumps(stored))
    return seconds


def compare_engines(
    bundle_dir: Path, frame: object, repeat: int, cache: Path | None, work: Path
) -> None:
    """`Bundle.predict` with LightGBM and with the compiled engine, measured alternately."""
    import numpy as np

    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.engine import select

    if cache is None:
        cache = work / "compiled"
        print(f"compiled with lleaves in {compile_cache(bundle_dir, cache):.1f}s")
    plain, fast = Bundle.load(bundle_dir), Bundle.load(bundle_dir)
    engine = select(fast, cache)
    if engine.name != "lleaves":
        raise SystemExit(f"the compiled engine is not used: {engine.reason}")
    threads = plain.policy.num_threads
    one = frame.head(1)  # type: ignore[attr-defined]
    batch: dict[str, list[float]] = {"lightgbm": [], "lleaves": []}
    single: dict[str, list[float]] = {"lightgbm": [], "lleaves": []}
    outs = {}
    for _ in range(repeat):
        for name, bundle in (("lightgbm", plain), ("lleaves", fast)):
            start = time.perf_counter()
            outs[name] = bundle.predict(frame, threads=threads)
            batch[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(200):
                bundle.predict(one, threads=1)
            single[name].append((time.perf_counter() - start) / 200)
    diff = np.max(np.abs(outs["lleaves"]["prediction"] - outs["lightgbm"]["prediction"]))
    n = len(frame)  # type: ignore[arg-type]
    trees = plain.booster.num_trees()
    print(f"engines on {trees} trees (Bundle.predict, checks included), max difference {diff:.1e}")
    for name in batch:
        print(
            f"  {name:9} batch {median_rate(n, batch[name]):>12,.0f} rows/s   one row "
            f"{statistics.median(single[name]) * 1e3:.3f} ms"
        )
    speedup = median_rate(n, batch["lleaves"]) / median_rate(n, batch["lightgbm"])
    one_row = statistics.median(single["lightgbm"]) / statistics.median(single["lleaves"])
    print(
        f"  ratio lleaves/lightgbm: batch {speedup:.2f}x throughput, one row {one_row:.2f}x faster"
    )


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
    parser.add_argument("--engine", choices=("both", "lightgbm"), default="both")
    parser.add_argument("--compiled", type=Path, default=None, help="a compiled cache directory")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.transforms import apply, matrix

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
        # the same rows with the schema's text categories read as dictionaries (pandas
        # categoricals), as ``pd.read_parquet(..., read_dictionary=[...])`` gives them
        text = [c.name for c in bundle.schema.columns if c.categories and c.dtype == "str"]
        coded = pd.read_parquet(source, read_dictionary=text)
        inproc, raw, nocheck, dictionary = [], [], [], []
        phases: dict[str, list[float]] = {"check": [], "matrix": [], "output": []}
        checked = bundle.check(frame)
        for i in range(args.repeat):
            # the pair in turn first and second (a call right after another ran slower)
            for first in (True, False) if i % 2 == 0 else (False, True):
                start = time.perf_counter()
                if first:
                    out = bundle.predict(frame, threads=threads)
                    inproc.append(time.perf_counter() - start)
                else:
                    pred = booster.predict(features, num_threads=threads)
                    raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            bundle.score(checked, threads=threads)
            nocheck.append(time.perf_counter() - start)
            start = time.perf_counter()
            out_coded = bundle.predict(coded, threads=threads)
            dictionary.append(time.perf_counter() - start)
            # the work outside the model, phase by phase (single-threaded, so far less
            # sensitive to a busy machine than the model's threads)
            start = time.perf_counter()
            again = bundle.check(frame)
            phases["check"].append(time.perf_counter() - start)
            start = time.perf_counter()
            work = dict(again.work)
            matrix(bundle.transforms, work, bundle.feature_names, bundle.custom, again.codes)
            phases["matrix"].append(time.perf_counter() - start)
            start = time.perf_counter()
            pd.DataFrame(bundle.columns(pred, kind="pandas"), index=frame.index)
            phases["output"].append(time.perf_counter() - start)
        assert np.array_equal(out["prediction"].to_numpy(), pred)
        assert out_coded.equals(out), "a frame of dictionaries predicts otherwise"
        if args.engine != "lightgbm":
            compare_engines(bundle_dir, frame, args.repeat, args.compiled, work)

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
        "throughput; each pair: "
        + ", ".join(f"{b / a:.2f}x" for a, b in zip(inproc, raw, strict=True))
    )
    print(
        f"Bundle.predict, text as dictionaries {median_rate(n, dictionary):>10,.0f} rows/s  "
        f"({median_rate(n, dictionary) / median_rate(n, raw):.2f}x booster.predict)"
    )
    shown = {name: statistics.median(times) * 1e3 for name, times in phases.items()}
    print(
        f"  outside the model (ms): check {shown['check']:.1f}, transforms + matrix "
        f"{shown['matrix']:.1f}, output frame {shown['output']:.1f}; "
        f"total {sum(shown.values()):.1f}"
    )


if __name__ == "__main__":
    main()
