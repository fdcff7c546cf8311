"""The whole default pipeline under `pipespec run` against a hand-written `dvc.yaml` of small
scripts doing the same work under `dvc repro`: wall time and peak memory of the whole run,
and of each stage, on a synthetic table at each size. Prints the ratios pipespec/hand-written.

Data: `data_layer.make_frame` (seeded: N numeric columns, 2% missing in x0, M text columns)
with a target that depends on the features, written to Parquet; the same file (a hard link)
feeds both projects.

- pipespec: `pipespec init`, dataset=parquet (target y, task binary), schema=none, env=prod
  (all rows), compute=local with num_threads=2, every numeric column imputed with its median,
  `--rounds` boosting rounds with early stopping on valid; the default pipeline (configs
  check, load, validate, split, featurize, train, evaluate, gate, package), composed
  beforehand (not timed), then timed: `pipespec run -f OVERRIDES`.
- hand-written: git + `dvc init`, `params.yaml` with the same values (LightGBM params taken
  from the pipespec project's composition), and `dvc.yaml` stages prepare (read Parquet, basic
  checks, the same seeded stratified 70/15/15 split), featurize (median imputation, category
  codes most frequent first), train (`lightgbm.train`, same params, rounds and early
  stopping), evaluate (the same binary metrics on valid and test), package (model, feature
  spec, metrics and a SHA-256 manifest in models/bundle). Timed: `dvc repro -f`.

Peak memory is the largest resident set of any process of the run (`wait4` on the top
process: its own peak and its reaped descendants'), also shown relative to the input frame's
in-memory size (`memory_usage(deep=True)`). Per stage, /proc is polled every 50 ms for the
run's descendant processes: span (first to last seen) and peak RSS (VmHWM) of each stage
process. The two sides run one after the other (alternating order with --repeat); the
machine is shared: absolute times drift, ratios measured together hold. The train stage does
the same amount of work on both sides (as many rows, the same params and rounds), though not
on the same rows: pipespec's split draws each row by a seeded hash of its number (the same
split whatever the partitions, on Dask and Spark too), the hand-written one by a seeded
permutation per class, so the model files differ (the sanity line compares them and the
test AUC). Train is also what CPU contention from other jobs slows most (LightGBM's OpenMP
threads on 2 cores), so the ratio without it is printed too.

    python bench/pipeline.py [--rows 100000,1000000] [--numeric 50] [--categorical 5]
                             [--rounds 100] [--repeat 2] [--impute all|missing] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_layer import make_frame

if TYPE_CHECKING:
    import pandas as pd

BIN = Path(sys.executable).parent
POLL = 0.05  # seconds between /proc samples
EARLY_STOPPING = 50
INPUT = "data.parquet"

# --- the hand-written project -----------------------------------------------------------

SCRIPTS = {
    "prepare.py": """
        import os, sys
        import numpy as np
        import pandas as pd
        import yaml

        p = yaml.safe_load(open("params.yaml"))
        target = p["data"]["target"]
        df = pd.read_parquet(p["data"]["path"])
        if target not in df.columns:
            sys.exit(f"target column {target!r} is missing")
        if df[target].isna().any():
            df = df[df[target].notna()].reset_index(drop=True)
        y = df[target].to_numpy()
        classes = np.unique(y)
        if len(df) == 0 or len(classes) < 2:
            sys.exit("need rows and at least two classes")
        rng = np.random.default_rng(p["seed"])
        part = np.zeros(len(df), dtype=np.int8)  # 0 train, 1 valid, 2 test
        for cls in classes:  # stratified: each class split in the same proportions
            idx = np.flatnonzero(y == cls)
            idx = idx[rng.permutation(len(idx))]
            n_test = round(len(idx) * p["split"]["test"])
            n_valid = round(len(idx) * p["split"]["valid"])
            part[idx[:n_test]] = 2
            part[idx[n_test : n_test + n_valid]] = 1
        os.makedirs("data/prepared", exist_ok=True)
        for code, name in enumerate(["train", "valid", "test"]):
            df[part == code].to_parquet(f"data/prepared/{name}.parquet", index=False)
            print(name, int((part == code).sum()), "rows")
    """,
    "featurize.py": """
        import json, os
        import numpy as np
        import pandas as pd
        import yaml

        p = yaml.safe_load(open("params.yaml"))
        target = p["data"]["target"]
        train = pd.read_parquet("data/prepared/train.parquet")
        features = [c for c in train.columns if c != target]
        numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
        categorical = [c for c in features if c not in numeric]
        medians = train[p["features"]["impute"]].median()  # median imputation
        categories = {}
        for c in categorical:  # codes: most frequent first, ties by name
            counts = sorted(train[c].value_counts().items(), key=lambda kv: (-kv[1], str(kv[0])))
            categories[c] = [str(k) for k, _ in counts]

        def transform(df):
            out = {}
            for c in features:
                if c in categories:
                    codes = pd.Categorical(df[c], categories=categories[c]).codes.astype("float64")
                    codes[codes < 0] = np.nan  # unseen or missing
                    out[c] = codes
                elif c in medians.index:
                    out[c] = df[c].fillna(medians[c])
                else:
                    out[c] = df[c]
            out[target] = df[target].to_numpy()
            return pd.DataFrame(out)

        os.makedirs("data/features", exist_ok=True)
        os.makedirs("models", exist_ok=True)
        spec = {"target": target, "features": features, "categorical": categorical,
                "medians": {c: float(v) for c, v in medians.items()}, "categories": categories}
        with open("models/features.json", "w") as fh:
            json.dump(spec, fh, indent=2, sort_keys=True)
        transform(train).to_parquet("data/features/train.parquet", index=False)
        del train
        for name in ["valid", "test"]:
            df = pd.read_parquet(f"data/prepared/{name}.parquet")
            transform(df).to_parquet(f"data/features/{name}.parquet", index=False)
    """,
    "train.py": """
        import json, os
        import lightgbm as lgb
        import pandas as pd
        import yaml

        p = yaml.safe_load(open("params.yaml"))
        target = p["data"]["target"]
        spec = json.load(open("models/features.json"))
        train = pd.read_parquet("data/features/train.parquet")
        valid = pd.read_parquet("data/features/valid.parquet")
        cols, cats = spec["features"], spec["categorical"]
        dtrain = lgb.Dataset(train[cols], label=train[target], categorical_feature=cats)
        dvalid = lgb.Dataset(valid[cols], label=valid[target], reference=dtrain,
                             categorical_feature=cats)
        booster = lgb.train(
            p["train"]["lgb"], dtrain, num_boost_round=p["train"]["rounds"],
            valid_sets=[dvalid], valid_names=["valid"],
            callbacks=[lgb.early_stopping(p["train"]["early_stopping_rounds"],
                                          first_metric_only=True, verbose=False)],
        )
        best = booster.best_iteration or booster.current_iteration()
        booster.save_model("models/model.txt", num_iteration=best)
        os.makedirs("metrics", exist_ok=True)
        with open("metrics/train.json", "w") as fh:
            json.dump({"best_iteration": best, "trained_rounds": booster.current_iteration(),
                       **{f"valid_{k}": v for k, v in booster.best_score["valid"].items()}}, fh)
    """,
    "evaluate.py": """
        import json
        import lightgbm as lgb
        import pandas as pd
        import yaml
        from sklearn import metrics as m

        p = yaml.safe_load(open("params.yaml"))
        target, threshold = p["data"]["target"], p["evaluate"]["threshold"]
        threads = p["evaluate"]["num_threads"]
        booster = lgb.Booster(model_file="models/model.txt")
        out = {}
        for name in ["valid", "test"]:
            df = pd.read_parquet(f"data/features/{name}.parquet")
            y = df[target].to_numpy()
            pred = booster.predict(df[booster.feature_name()], num_threads=threads)
            label = (pred >= threshold).astype(int)
            scores = {
                "auc": m.roc_auc_score(y, pred), "pr_auc": m.average_precision_score(y, pred),
                "logloss": m.log_loss(y, pred, labels=[0, 1]), "brier": m.brier_score_loss(y, pred),
                "accuracy": m.accuracy_score(y, label),
                "precision": m.precision_score(y, label, zero_division=0),
                "recall": m.recall_score(y, label, zero_division=0),
                "f1": m.f1_score(y, label, zero_division=0),
            }
            out[name] = {k: round(float(v), 6) for k, v in scores.items()}
        with open("metrics/evaluate.json", "w") as fh:
            json.dump(out, fh, indent=2, sort_keys=True)
    """,
    "package.py": """
        import hashlib, json, os, shutil

        os.makedirs("models/bundle", exist_ok=True)
        manifest = {}
        for src in ["models/model.txt", "models/features.json", "metrics/evaluate.json"]:
            dst = shutil.copy(src, "models/bundle/")
            with open(dst, "rb") as fh:
                manifest[os.path.basename(dst)] = hashlib.sha256(fh.read()).hexdigest()
        with open("models/bundle/manifest.json", "w") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True)
    """,
}

DVC_YAML = """\
stages:
  prepare:
    cmd: python stages/prepare.py
    deps: [stages/prepare.py, data.parquet]
    params: [seed, data, split]
    outs: [data/prepared/train.parquet, data/prepared/valid.parquet, data/prepared/test.parquet]
  featurize:
    cmd: python stages/featurize.py
    deps: [stages/featurize.py, data/prepared/train.parquet, data/prepared/valid.parquet,
           data/prepared/test.parquet]
    params: [data.target, features]
    outs: [models/features.json, data/features/train.parquet, data/features/valid.parquet,
           data/features/test.parquet]
  train:
    cmd: python stages/train.py
    deps: [stages/train.py, models/features.json, data/features/train.parquet,
           data/features/valid.parquet]
    params: [data.target, train]
    outs: [models/model.txt]
    metrics: [metrics/train.json: {cache: false}]
  evaluate:
    cmd: python stages/evaluate.py
    deps: [stages/evaluate.py, models/model.txt, data/features/valid.parquet,
           data/features/test.parquet]
    params: [data.target, evaluate]
    metrics: [metrics/evaluate.json: {cache: false}]
  package:
    cmd: python stages/package.py
    deps: [stages/package.py, models/model.txt, models/features.json, metrics/evaluate.json]
    outs: [models/bundle]
"""

# Stages of the two sides that do the same part of the work, for the per-stage comparison.
GROUPS = (
    ("read, check, split", ("configs", "load", "validate", "split"), ("prepare",)),
    ("featurize", ("featurize",), ("featurize",)),
    ("train", ("train",), ("train",)),
    ("evaluate", ("evaluate",), ("evaluate",)),
    ("gate + package", ("gate", "package"), ("package",)),
    ("behaviour checks", ("behavior",), ()),  # pipespec only: no hand-written counterpart
)
EXTRA = ("behavior",)  # stages doing work the hand-written side does not do


def make_data(rows: int, numeric: int, categorical: int) -> pd.DataFrame:
    """`data_layer.make_frame` with a target that depends on x1..x5 and c0 (seeded)."""
    import numpy as np

    frame = make_frame(rows, numeric, categorical)
    rng = np.random.default_rng(1)
    x = frame[[f"x{i}" for i in range(1, 6)]].to_numpy()
    level = frame["c0"].str.removeprefix("level_").astype("int64").to_numpy()
    logit = x @ np.array([0.9, -0.7, 0.5, 0.4, -0.3]) + 0.5 * x[:, 0] * x[:, 1]
    logit += 0.3 * (level % 4) - 1.2
    frame["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


# --- running and watching a run ---------------------------------------------------------


@dataclass
class Proc:
    name: str
    first: float
    last: float
    hwm: int = 0  # bytes


@dataclass
class Run:
    wall: float
    peak: int  # bytes: max RSS over the top process and every reaped descendant
    top_peak: int  # bytes: the top process's own VmHWM (pipespec run / dvc repro)
    load: float  # 1-minute load average when the run started
    stages: dict[str, Proc] = field(default_factory=dict)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def _descendants(pid: int, limit: int = 500) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < limit:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _runner_stage(pid: int) -> str | None:
    """The stage a child of pipespec's warm runner runs: it names itself `stage NAME`
    (/proc/PID/comm, 15 bytes) right after the fork."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:
            comm = fh.read().strip()
    except OSError:
        return None
    return comm.removeprefix("stage ") if comm.startswith("stage ") else None


def stage_of(argv: list[str]) -> str | None:
    """The stage a process runs: `pipespec stage NAME`, the configs check, a script."""
    if "stage" in argv[:-1] and any(a.endswith("pipespec") for a in argv):
        return argv[argv.index("stage") + 1]
    if "compose" in argv and "--check" in argv:
        return "configs"
    for arg in argv[1:2]:
        if arg.startswith("stages/") and arg.endswith(".py"):
            return Path(arg).stem
    return None


def watched(argv: list[str], cwd: Path, log: Path, timeout: float) -> Run:
    """Run ``argv``; sample its process tree until it exits; fail loudly on error."""
    load = os.getloadavg()[0]
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=out, start_new_session=True)
        procs: dict[int, Proc] = {}
        top_peak = 0
        while True:
            now = time.perf_counter()
            top_peak = max(top_peak, _hwm(proc.pid))
            for pid in _descendants(proc.pid):
                known = procs.get(pid)
                if known is None:
                    name = stage_of(_argv(pid)) or _runner_stage(pid)
                    if name is None:
                        continue
                    known = procs[pid] = Proc(name, now, now)
                known.last = now
                known.hwm = max(known.hwm, _hwm(pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if now - start > timeout:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                raise SystemExit(f"`{' '.join(argv[:3])}` took over {timeout:.0f}s; see {log}")
            time.sleep(POLL)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed:\n{log.read_text()[-3000:]}")
    stages: dict[str, Proc] = {}
    for p in procs.values():
        s = stages.setdefault(p.name, Proc(p.name, p.first, p.last, p.hwm))
        s.first, s.last, s.hwm = min(s.first, p.first), max(s.last, p.last), max(s.hwm, p.hwm)
    return Run(wall, usage.ru_maxrss * 1024, top_peak, load, stages)


# --- the two projects -------------------------------------------------------------------


def run_cmd(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def pipespec_overrides(numeric: int, rounds: int, impute: str) -> list[str]:
    # features.impute has no "every numeric column" form: each column is listed
    columns = range(numeric) if impute == "all" else (0,)  # make_frame: NaN in x0 only
    return [
        "dataset=parquet",
        f"dataset.path={INPUT}",
        "dataset.target=y",
        "dataset.task=binary",
        "schema=none",
        "env=prod",
        "compute=local",
        "compute.num_threads=2",
        f"model.num_boost_round={rounds}",
        f"model.early_stopping_rounds={EARLY_STOPPING}",
        *(f"+features.impute.x{i}=median" for i in columns),
    ]


def setup_pipespec(root: Path, data: Path, overrides: list[str]) -> dict[str, Any]:
    """A pipespec project composed with ``overrides``; returns the params the hand-written
    side needs, taken from that composition."""
    run_cmd([str(BIN / "pipespec"), "init", str(root)], root.parent)
    os.link(data, root / INPUT)
    run_cmd([str(BIN / "pipespec"), "compose", *overrides], root)

    from pipespec.engine.project import Project
    from pipespec.engine.stage_process import load_params
    from pipespec.stages.training import lightgbm_params

    params = load_params(Project(root))
    lgb_params = lightgbm_params(
        params["model"],
        task="binary",
        seed=params["seed"],
        threads=params["compute"]["num_threads"],
        num_class=None,
    )
    return {
        "seed": params["seed"],
        "data": {"path": INPUT, "target": params["dataset"]["target"]},
        "split": {"valid": params["split"]["valid"], "test": params["split"]["test"]},
        "train": {
            "rounds": params["model"]["num_boost_round"],
            "early_stopping_rounds": params["model"]["early_stopping_rounds"],
            "lgb": lgb_params,
        },
        "evaluate": {
            "threshold": params["evaluation"]["threshold"],
            "num_threads": params["compute"]["num_threads"],
        },
    }


def setup_hand(root: Path, data: Path, params: dict[str, Any]) -> None:
    import yaml

    root.mkdir()
    os.link(data, root / INPUT)
    (root / "stages").mkdir()
    for name, text in SCRIPTS.items():
        (root / "stages" / name).write_text(textwrap.dedent(text).lstrip())
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text(DVC_YAML)
    run_cmd(["git", "init", "-q"], root)
    run_cmd([str(BIN / "dvc"), "init", "-q"], root)


def disk_mib(root: Path) -> float:
    """Bytes under the project (outputs and DVC's cache), the input and .git left out."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for f in filenames:
            if Path(dirpath) == root and f == INPUT:
                continue
            total += os.lstat(os.path.join(dirpath, f)).st_size
    return total / 2**20


def _json(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


# --- one size ---------------------------------------------------------------------------


def bench_size(args: argparse.Namespace, rows: int, work: Path) -> dict[str, Any]:
    frame = make_data(rows, args.numeric, args.categorical)
    size = int(frame.memory_usage(deep=True).sum())
    data = work / INPUT
    frame.to_parquet(data, index=False)
    del frame
    ours_root, hand_root = work / "pipespec", work / "hand"
    overrides = pipespec_overrides(args.numeric, args.rounds, args.impute)
    params = setup_pipespec(ours_root, data, overrides)
    params["features"] = {"impute": [f"x{i}" for i in range(args.numeric)]}
    if args.impute == "missing":
        params["features"]["impute"] = ["x0"]
    setup_hand(hand_root, data, params)
    commands = {
        "pipespec": ([str(BIN / "pipespec"), "run", "-f", *overrides], ours_root),
        "hand": ([str(BIN / "dvc"), "repro", "-f"], hand_root),
    }
    runs: dict[str, list[Run]] = {"pipespec": [], "hand": []}
    for i in range(args.repeat):
        order = ("pipespec", "hand") if i % 2 == 0 else ("hand", "pipespec")
        for side in order:
            argv, cwd = commands[side]
            runs[side].append(watched(argv, cwd, work / f"{side}.log", args.timeout))

    ours_train = _json(ours_root / "metrics" / "train.json")
    hand_train = _json(hand_root / "metrics" / "train.json")
    result = {
        "rows": rows,
        "size": size,
        "runs": runs,
        "auc": (
            _json(ours_root / "metrics" / "evaluate.json")["test"]["auc"],
            _json(hand_root / "metrics" / "evaluate.json")["test"]["auc"],
        ),
        "best": (ours_train["best_iteration"], hand_train["best_iteration"]),
        "trained": hand_train["trained_rounds"],
        "same_model": (ours_root / "models" / "train" / "model.txt").read_bytes()
        == (hand_root / "models" / "model.txt").read_bytes(),
        "disk": (disk_mib(ours_root), disk_mib(hand_root)),
        "yaml": {
            side: {n: (root / n).stat().st_size for n in ("params.yaml", "dvc.yaml", "dvc.lock")}
            for side, root in (("pipespec", ours_root), ("hand", hand_root))
        },
    }
    for path in (data, ours_root / INPUT, hand_root / INPUT):
        path.unlink()
    shutil.rmtree(ours_root)
    shutil.rmtree(hand_root)
    return result


def _span(p: Proc) -> float:
    return max(p.last - p.first, POLL)  # a process shorter than one sample shows as POLL


def _stage_figures(runs: list[Run], names: tuple[str, ...]) -> tuple[float, int, str]:
    """Seconds (sum over ``names`` of each stage's fastest run), peak (max of the stages'
    median VmHWM) and the per-stage seconds as text."""
    spans, peaks = [], []
    for name in names:
        seen = [r.stages[name] for r in runs if name in r.stages]
        if seen:
            spans.append((name, min(_span(p) for p in seen)))
            peaks.append(statistics.median(p.hwm for p in seen))
    detail = " ".join(f"{n} {t:.1f}/{_mib(m)}" for (n, t), m in zip(spans, peaks, strict=True))
    return sum(t for _, t in spans), int(max(peaks, default=0)), detail


def report(result: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    rows, size, runs = result["rows"], result["size"], result["runs"]
    wall = {s: statistics.median(r.wall for r in runs[s]) for s in runs}
    best = {s: min(r.wall for r in runs[s]) for s in runs}
    peak = {s: statistics.median(r.peak for r in runs[s]) for s in runs}
    print(
        f"\n== {rows:,} rows x ({args.numeric} numeric + {args.categorical} categorical) + "
        f"binary target: {size / 2**20:,.0f} MiB in memory; {args.rounds} rounds max, "
        f"early stopping {EARLY_STOPPING}; {args.repeat} run(s) per side"
    )
    print(
        f"{'side':<23} {'wall s':>7} {'min s':>7} {'peak MiB':>9} {'peak/frame':>11} "
        f"{'top MiB':>8} {'disk MiB':>9} {'test AUC':>9} {'best it':>8}"
    )
    names = {"pipespec": "pipespec run", "hand": "hand-written dvc repro"}
    for i, side in enumerate(("pipespec", "hand")):
        top = statistics.median(r.top_peak for r in runs[side])
        print(
            f"{names[side]:<23} {wall[side]:>7.1f} {best[side]:>7.1f} {_mib(peak[side]):>9} "
            f"{peak[side] / size:>10.2f}x {_mib(top):>8} "
            f"{result['disk'][i]:>9,.0f} {result['auc'][i]:>9.6f} {result['best'][i]:>8}"
        )

    # train does as much work on both sides (as many rows, other ones: see the docstring)
    # and is what CPU contention from other jobs slows most (2 OpenMP threads on 2 cores):
    # the rest, apart
    def without(r: Run, names: tuple[str, ...]) -> float:
        return r.wall - sum(_span(r.stages[n]) for n in names if n in r.stages)

    rest = {s: statistics.median(without(r, ("train", *EXTRA)) for r in runs[s]) for s in runs}
    same = {s: statistics.median(without(r, EXTRA) for r in runs[s]) for s in runs}
    ratios = {
        "same": same["pipespec"] / same["hand"],
        "wall": wall["pipespec"] / wall["hand"],
        "min": best["pipespec"] / best["hand"],
        "rest": rest["pipespec"] / rest["hand"],
        "peak": peak["pipespec"] / peak["hand"],
    }
    print(
        f"ratio pipespec/hand-written: wall {ratios['wall']:.2f}x (median), "
        f"{ratios['min']:.2f}x (fastest runs); the same work (without pipespec's behaviour "
        f"checks) {ratios['same']:.2f}x ({same['pipespec']:.1f}s vs {same['hand']:.1f}s), "
        f"and without the train stage too {ratios['rest']:.2f}x ({rest['pipespec']:.1f}s vs "
        f"{rest['hand']:.1f}s); peak memory {ratios['peak']:.2f}x"
    )
    for side in runs:
        print(
            f"  {names[side]} runs: "
            + ", ".join(f"{r.wall:.1f}s (load avg {r.load:.1f})" for r in runs[side])
        )
    print(
        f"sanity: hand-written trained {result['trained']} rounds (best {result['best'][1]}), "
        f"pipespec best {result['best'][0]}; identical model files: {result['same_model']}; "
        f"test AUC difference {abs(result['auc'][0] - result['auc'][1]):.2g}"
    )

    print(
        "per stage (each stage's fastest run: first to last seen, sampled every "
        f"{POLL * 1000:.0f} ms; peak: VmHWM):"
    )
    print(
        f"  {'work':<19} {'pipespec stages (s/MiB)':<52} {'s':>6} {'MiB':>6} | "
        f"{'hand':<10} {'s':>6} {'MiB':>6} | {'wall x':>6} {'peak x':>6}"
    )
    for label, our_names, hand_names in GROUPS:
        os_, om, detail = _stage_figures(runs["pipespec"], our_names)
        hs, hm, _ = _stage_figures(runs["hand"], hand_names)
        if not hand_names:
            print(f"  {label:<19} {detail:<52} {os_:>6.1f} {_mib(om):>6} | (pipespec only)")
            continue
        print(
            f"  {label:<19} {detail:<52} {os_:>6.1f} {_mib(om):>6} | "
            f"{'+'.join(hand_names):<10} {hs:>6.1f} {_mib(hm):>6} | "
            f"{os_ / hs if hs else float('nan'):>5.2f}x {om / hm if hm else float('nan'):>5.2f}x"
        )
    for side in runs:
        outside = min(r.wall - sum(_span(p) for p in r.stages.values()) for r in runs[side])
        print(
            f"  {names[side]}: outside the stage processes (start-up, DVC's hashing, caching "
            f"and lock writes) {outside:.1f}s; "
            + ", ".join(f"{n} {b / 1024:.1f} KiB" for n, b in result["yaml"][side].items())
        )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--numeric", type=int, default=50)
    parser.add_argument("--categorical", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2, help="runs per side and size")
    parser.add_argument(
        "--impute",
        choices=("all", "missing"),
        default="all",
        help="median-impute every numeric column (default) or only those with missing values",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    args = parser.parse_args()
    if args.numeric < 6 or args.categorical < 1:
        parser.error("the target needs --numeric >= 6 and --categorical >= 1")
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    sizes = [int(r) for r in args.rows.split(",") if r.strip()]
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            work = Path(tmp) / f"rows{rows}"
            work.mkdir()
            summary.append((rows, report(bench_size(args, rows, work), args)))
    print("\nsummary, pipespec/hand-written:")
    for rows, r in summary:
        print(
            f"  {rows:>10,} rows: wall {r['wall']:.2f}x (median), {r['min']:.2f}x (fastest), "
            f"{r['same']:.2f}x the same work (without behaviour checks), {r['rest']:.2f}x "
            f"without train too; peak memory {r['peak']:.2f}x"
        )


if __name__ == "__main__":
    main()
