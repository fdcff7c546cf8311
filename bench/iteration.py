"""Small-data iteration: `pipespec run -f` of the default pipeline on a 10,000-row table
against one hand-written script doing the same work in one process, as a ratio (target: at
most 2x). Two tables:

- embedded: the embedded generator (`dataset.rows=10000`), binary;
- csv: the first 10,000 rows of the shared California housing CSV (`dataset=csv`),
  regression.

pipespec: `pipespec init`, composed beforehand (not timed), env=prod (every row), then timed:
`pipespec run -f` (compose check, load, validate, split, featurize, train, package,
evaluate, behaviour checks, gate), with the warm stage runner (the default) and, for the
figure before it, with `PIPESPEC_RUNNER=0` (each stage in its own process, as plain
`dvc repro` runs them).

hand-written: one `python script.py` that reads the table, makes the same seeded stratified
70/15/15 split, imputes medians and codes categories, trains LightGBM with the composition's
params and early stopping on valid, and scores valid and test with scikit-learn.

The runs alternate (--repeat) and the machine is shared: compare the ratios of one run. A
second line gives the CPU seconds (user + system) of each side's processes, which a loaded
machine inflates less than the wall time (DVC's detached analytics daemon is not counted).

    python bench/iteration.py [--rows 10000] [--repeat 1] [--tables embedded,csv]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
SHARED = Path(
    os.environ.get("PIPESPEC_SHARED_DATA") or Path(__file__).parents[2] / "shared" / "data"
)
CSV = SHARED / "california_housing" / "housing.csv"

SCRIPT = """
    import json, sys
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    from sklearn import metrics as m

    p = json.load(open("hand.json"))
    target, task = p["target"], p["task"]
    if p["source"] == "embedded":
        from pipespec.stages.embedded import generate
        df = generate(p["rows"], p["seed"]).drop(columns=p["drop"])
    else:
        df = pd.read_csv(p["path"])
    y_raw = df[target]
    classes = sorted(y_raw.unique()) if task == "binary" else None
    y = (y_raw == classes[-1]).astype(int).to_numpy() if classes else y_raw.to_numpy(float)
    rng = np.random.default_rng(p["seed"])
    part = np.zeros(len(df), dtype=np.int8)  # 0 train, 1 valid, 2 test
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if classes else [np.arange(len(y))]
    for idx in groups:
        idx = idx[rng.permutation(len(idx))]
        n_test, n_valid = round(len(idx) * 0.15), round(len(idx) * 0.15)
        part[idx[:n_test]] = 2
        part[idx[n_test:n_test + n_valid]] = 1
    x = df.drop(columns=[target])
    train = x[part == 0]
    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    medians = train[numeric].median()
    cats = {c: list(train[c].value_counts().index) for c in x.columns if c not in numeric}

    def encode(frame):
        out = frame[numeric].fillna(medians)
        for c, levels in cats.items():
            codes = pd.Categorical(frame[c], categories=levels).codes.astype(float)
            codes[codes < 0] = np.nan
            out[c] = codes
        return out

    xs = {k: encode(x[part == k]) for k in (0, 1, 2)}
    ys = {k: y[part == k] for k in (0, 1, 2)}
    dtrain = lgb.Dataset(xs[0], label=ys[0], categorical_feature=list(cats))
    dvalid = lgb.Dataset(xs[1], label=ys[1], reference=dtrain, categorical_feature=list(cats))
    booster = lgb.train(p["lgb"], dtrain, num_boost_round=p["rounds"], valid_sets=[dvalid],
                        callbacks=[lgb.early_stopping(p["early_stopping_rounds"], verbose=False)])
    scores = {}
    for k, name in ((1, "valid"), (2, "test")):
        pred = booster.predict(xs[k], num_iteration=booster.best_iteration)
        if task == "binary":
            label = (pred >= 0.5).astype(int)
            scores[name] = {"auc": m.roc_auc_score(ys[k], pred),
                            "logloss": m.log_loss(ys[k], y_proba=pred, labels=[0, 1]),
                            "f1": m.f1_score(ys[k], label, zero_division=0)}
        else:
            scores[name] = {"rmse": float(np.sqrt(m.mean_squared_error(ys[k], pred))),
                            "r2": m.r2_score(ys[k], pred)}
    print(json.dumps(scores))
"""


CPU: list[float] = []  # CPU seconds (user + system) of each run's processes, in order


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of the command; its processes' CPU seconds go to ``CPU`` (on a loaded
    machine they hold better than the wall time; a detached process is not counted)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return wall


def setup(work: Path, table: str, rows: int) -> tuple[Path, list[str], dict[str, Any]]:
    """The pipespec project (composed) and the hand-written script's params."""
    import json

    root = work / table
    run([str(BIN / "pipespec"), "init", str(root)], work)
    if table == "embedded":
        overrides = [f"dataset.rows={rows}", "env=prod"]
    else:
        lines = CSV.read_text().splitlines(keepends=True)[: rows + 1]
        (root / "data.csv").write_text("".join(lines))
        overrides = ["dataset=csv", "dataset.path=data.csv", "dataset.target=median_house_value",
                     "dataset.task=regression", "env=prod"]  # fmt: skip
    run([str(BIN / "pipespec"), "compose", *overrides], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "composed"], root)

    from pipespec.engine.project import Project
    from pipespec.engine.stage_process import load_params
    from pipespec.stages.training import lightgbm_params

    params = load_params(Project(root))
    task = params["dataset"]["task"]
    hand = {
        "source": "embedded" if table == "embedded" else "csv",
        "rows": rows,
        "path": "data.csv",
        "drop": params["dataset"].get("drop") or [],
        "seed": params["seed"],
        "target": params["dataset"]["target"],
        "task": task,
        "rounds": params["model"]["num_boost_round"],
        "early_stopping_rounds": params["model"]["early_stopping_rounds"],
        "lgb": lightgbm_params(
            params["model"],
            task=task,
            seed=params["seed"],
            threads=params["compute"]["num_threads"],
            num_class=None,
        ),
    }
    (root / "hand.json").write_text(json.dumps(hand))
    (root / "hand.py").write_text(textwrap.dedent(SCRIPT).lstrip())
    return root, overrides, hand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tables", default="embedded,csv")
    args = parser.parse_args()
    if not CSV.exists() and "csv" in args.tables:
        raise SystemExit(f"{CSV} is missing: set PIPESPEC_SHARED_DATA to the shared data folder")
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rows:,} rows")
    print(f"{'table':<10} {'hand-written':>13} {'pipespec':>10} {'ratio':>7} "
          f"{'no runner':>10} {'ratio':>7}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pipespec-iteration-") as tmp:
        work = Path(tmp)
        for table in args.tables.split(","):
            root, overrides, _ = setup(work, table, args.rows)
            times: dict[str, list[float]] = {"hand": [], "warm": [], "cold": []}
            cpu: dict[str, list[float]] = {"hand": [], "warm": [], "cold": []}
            cold_env = {**os.environ, "PIPESPEC_RUNNER": "0"}
            for _ in range(args.repeat):
                times["hand"].append(run([sys.executable, "hand.py"], root))
                cpu["hand"].append(CPU[-1])
                times["warm"].append(run([str(BIN / "pipespec"), "run", "-f", *overrides], root))
                cpu["warm"].append(CPU[-1])
                times["cold"].append(
                    run([str(BIN / "pipespec"), "run", "-f", *overrides], root, env=cold_env)
                )
                cpu["cold"].append(CPU[-1])
            hand, warm, cold = (statistics.median(times[k]) for k in ("hand", "warm", "cold"))
            c_hand, c_warm, c_cold = (statistics.median(cpu[k]) for k in ("hand", "warm", "cold"))
            print(f"{table:<10} {hand:>12.1f}s {warm:>9.1f}s {warm / hand:>6.2f}x "
                  f"{cold:>9.1f}s {cold / hand:>6.2f}x")  # fmt: skip
            print(f"{'  CPU s':<10} {c_hand:>12.1f}s {c_warm:>9.1f}s {c_warm / c_hand:>6.2f}x "
                  f"{c_cold:>9.1f}s {c_cold / c_hand:>6.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
