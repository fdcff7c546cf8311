"""The train stage (`pipespec stage train`, a whole process as DVC runs it) against a
hand-written script doing the same work: read the same Parquet, `lightgbm.train` with the same
parameters, save the model. Runs alternate in one session; prints medians and the ratio.

    python bench/train.py [--rows 1000000] [--features 50] [--rounds 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BIN = Path(sys.executable).parent

RAW = """
import json, sys
import lightgbm as lgb
import pandas as pd

params = json.loads(sys.argv[1])
train = pd.read_parquet("data/bench/train.parquet")
valid = pd.read_parquet("data/bench/valid.parquet")
x, y = train.drop(columns=["y"]), train["y"]
dtrain = lgb.Dataset(x, label=y)
dvalid = dtrain.create_valid(valid.drop(columns=["y"]), label=valid["y"])
booster = lgb.train(params, dtrain, num_boost_round=int(sys.argv[2]), valid_sets=[dvalid])
booster.save_model("raw_model.txt")
"""


def make_data(root: Path, rows: int, features: int) -> None:
    import numpy as np
    import pandas as pd

    from pipespec.stages.parquet import write_table

    rng = np.random.default_rng(0)
    for name, n in (("train", rows), ("valid", rows // 5)):
        x = rng.normal(size=(n, features)).astype("float64")
        logit = x[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3]) + 0.5 * x[:, 5] * x[:, 6]
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
        frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
        meta = {
            "target": "y",
            "task": "binary",
            "classes": [0, 1],
            "categorical": [],
            "features": list(frame.columns[:-1]),
            "weight": None,
        }
        write_table(frame, root / "data" / "bench" / f"{name}.parquet", meta)


def _runs(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        subprocess.run([str(BIN / "pipespec"), "init", str(root)], check=True, capture_output=True)
        (root / "pipelines" / "train.yaml").write_text(
            textwrap.dedent("""\
            stages:
              train:
                kind: train
                inputs:
                  train: data/bench/train.parquet
                  valid: data/bench/valid.parquet
            """)
        )
        make_data(root, args.rows, args.features)
        overrides = [
            "dataset.target=y",
            f"model.num_boost_round={args.rounds}",
            "model.early_stopping_rounds=null",
            "env=prod",
        ]
        subprocess.run(
            [str(BIN / "pipespec"), "compose", *overrides],
            cwd=root,
            check=True,
            capture_output=True,
        )

        from pipespec.engine.project import Project
        from pipespec.engine.stage_process import load_params
        from pipespec.stages.context import ParamsView
        from pipespec.stages.training import lightgbm_params

        view = ParamsView(load_params(Project(root)), ("seed", "model", "compute"), "bench")
        params = lightgbm_params(
            view["model"],
            task="binary",
            seed=view["seed"],
            threads=view["compute"]["num_threads"],
            num_class=None,
        )
        (root / "raw_train.py").write_text(RAW)
        raw_cmd = [sys.executable, "raw_train.py", json.dumps(params), str(args.rounds)]
        ours_cmd = [str(BIN / "pipespec"), "stage", "train"]
        ours, raw = [], []
        for _ in range(args.repeat):
            for cmd, times in ((ours_cmd, ours), (raw_cmd, raw)):
                start = time.perf_counter()
                subprocess.run(cmd, cwd=root, check=True, capture_output=True)
                times.append(time.perf_counter() - start)
        same = (root / "models" / "train" / "model.txt").read_bytes() == (
            root / "raw_model.txt"
        ).read_bytes()
        o, r = statistics.median(ours), statistics.median(raw)
        print(
            f"data: {args.rows:,} rows x {args.features} features, {args.rounds} rounds, "
            f"{params['num_threads']} threads"
        )
        print(f"`pipespec stage train`:    median {o:.2f}s  (runs: {_runs(ours)})")
        print(f"hand-written lgb.train:    median {r:.2f}s  (runs: {_runs(raw)})")
        print(f"ratio pipespec/raw:        {o / r:.3f}x  (target <= 1.03x)")
        print(f"identical model files:     {same}")


if __name__ == "__main__":
    main()
