"""The ``package`` stage: the production bundle in ``models/bundle/``, one DVC output.

It holds the trained model (LightGBM text), the fitted transforms (JSON), the input schema
inferred from the raw training rows, a reference profile of those rows and of the model's
predictions on them (for drift monitoring), a model card (JSON and Markdown) and a manifest
of SHA-256 hashes. Written atomically; no timestamps, so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

from pipespec.bundle import bundle as files
from pipespec.bundle.card import markdown, versions
from pipespec.bundle.profile import THRESHOLD_KEYS, reference
from pipespec.bundle.schema import check, infer, raw_inputs
from pipespec.core.console import console
from pipespec.core.errors import DataError, StageError
from pipespec.stages.context import StageContext
from pipespec.stages.tabular import read_table

REQUIRED = ("model", "transforms", "train")
SCHEMA_ROWS = 1_000_000  # training rows drawn from a partitioned table (compute=dask)
PROFILE_ROWS = 200_000  # training rows (seeded sample) the drift reference profile describes
# The modules whose code decides a bundle's content: their hash goes into the model card.
CODE = (
    "stages/load.py",
    "stages/split.py",
    "stages/featurize.py",
    "stages/train.py",
    "stages/evaluate.py",
    "stages/package.py",
    "bundle/transforms.py",
    "bundle/schema.py",
    "bundle/profile.py",
    "bundle/bundle.py",
    "bundle/card.py",
)


def run(ctx: StageContext) -> None:
    import lightgbm as lgb
    import numpy as np

    from pipespec.bundle.transforms import apply, model_columns

    prod = ctx.params["production"].to_dict()
    dataset = ctx.params["dataset"]
    threads = int(ctx.params["compute"]["num_threads"])
    model_bytes = ctx.input("model").read_bytes()
    transforms_bytes = ctx.input("transforms").read_bytes()
    transforms = json.loads(transforms_bytes)
    train, total_rows = _training_rows(ctx.input("train"), seed=int(ctx.params["seed"]))
    metrics: dict[str, Any] = {}
    if "metrics" in ctx.inputs:
        metrics = json.loads(ctx.input("metrics").read_text(encoding="utf-8"))
    label = transforms["target"]
    task, classes = label["task"], label.get("classes")
    missing = [c["name"] for c in raw_inputs(transforms) if c["name"] not in train.columns]
    if missing:
        raise DataError(
            f"input 'train' ({ctx.input('train')}) lacks feature column(s) {', '.join(missing)}: "
            "give the package stage the raw training split (split.train), not the featurized one"
        )

    ignored = sorted(
        {*dataset["drop"], *transforms.get("dropped", []), dataset.get("weight")}
        - {None, label["name"]}
    )
    schema = infer(
        train,
        transforms,
        range_margin=prod["range_margin"],
        closed_categories=bool(prod["closed_categories"]),
        ignored=ignored,
    )
    profiled = train
    if len(train) > PROFILE_ROWS:  # the schema sees every row; the profile needs a sample
        profiled = train.sample(n=PROFILE_ROWS, random_state=int(ctx.params["seed"])).sort_index()
    checked = check(schema, profiled, strict_types=False)
    booster = lgb.Booster(model_str=model_bytes.decode("utf-8"))
    features = apply(transforms, checked.frame)
    names = model_columns([f["name"] for f in transforms["features"]], booster.feature_name())
    scores = np.asarray(booster.predict(features[names], num_threads=threads))
    bins = int(prod["profile_bins"])
    profile = reference(schema, checked, scores, task, classes or [], bins)
    profile["thresholds"] = {k: prod["monitor"][k] for k in THRESHOLD_KEYS}

    threshold = None
    if task == "binary":
        threshold = float(metrics.get("threshold", ctx.params["evaluation"]["threshold"]))
    output = {"task": task, "target": label["name"], "classes": classes, "threshold": threshold}
    policy = {
        "on_invalid": prod["on_invalid"],
        "max_records": int(prod["max_records"]),
        "max_body_bytes": int(prod["max_body_bytes"]),
        "range_margin": prod["range_margin"],
        "closed_categories": bool(prod["closed_categories"]),
        "num_threads": threads,
        "csv": {"sep": dataset["sep"], "na_values": list(dataset["na_values"])},
    }
    schema_doc = {**schema.to_json(), "output": output, "policy": policy}

    hashes = {k: _sha(p) for k, p in sorted(ctx.inputs.items())}
    name = f"{dataset['name']}-{ctx.params['model']['name']}"
    card = {
        "name": name,
        "bundle_format": files.FORMAT_VERSION,
        "env": ctx.params["env"]["name"],
        "model": {
            "task": task,
            "target": label["name"],
            "classes": classes,
            "threshold": threshold,
            "trees": booster.num_trees(),
            "objective": _objective(model_bytes),
            "feature_names": booster.feature_name(),
        },
        "features": [
            {**c.to_json(), "categories": None if c.categories is None else len(c.categories)}
            for c in schema.columns
        ],
        "ignored": list(schema.ignored),
        "metrics": metrics,
        "params": ctx.params.to_dict(),
        "data": {
            "train": {
                "sha256": hashes["train"],
                "rows": total_rows,
                "profiled_rows": len(profiled),
                "columns": len(train.columns),
            },
        },
        "inputs": hashes,
        "code": code_hash(),
        "versions": versions(),
        "git": git_commit(ctx.root) if prod["git_commit"] else None,
    }
    contents = {
        files.MODEL: model_bytes,
        files.TRANSFORMS: transforms_bytes,
        files.SCHEMA: files.dumps(schema_doc),
        files.PROFILE: files.dumps(profile),
        files.CARD: files.dumps(_jsonable(card)),
        files.CARD_MD: markdown(card).encode("utf-8"),
    }
    target = ctx.output("bundle")
    sha = files.write(target, contents)
    console().print(
        f"  bundle {sha[:12]}: {len(schema.columns)} input columns, {booster.num_trees()} trees, "
        f"profile of {len(profiled):,} training rows -> {target}"
    )


def code_hash() -> dict[str, Any]:
    """SHA-256 over the pipespec modules that decide what a bundle holds."""
    root = resources.files("pipespec")
    h = hashlib.sha256()
    for rel in CODE:
        path = root.joinpath(*rel.split("/"))
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return {"sha256": h.hexdigest(), "files": list(CODE)}


def git_commit(root: Path) -> dict[str, Any] | None:
    """HEAD and whether the work tree has uncommitted changes; None outside git."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def _objective(model_text: bytes) -> str | None:
    for line in model_text.decode("utf-8", errors="replace").splitlines()[:30]:
        if line.startswith("objective="):
            return line.split("=", 1)[1]
    return None


def _training_rows(path: Path, *, seed: int) -> tuple[Any, int]:
    """The training rows the schema and the drift profile are built from, and the count of
    all of them: every row of a single-file table; of a partitioned one (compute=dask) at
    most SCHEMA_ROWS, drawn with a seeded generator part by part."""
    import numpy as np
    import pandas as pd

    if not path.is_dir():
        train, _ = read_table(path)
        return train, len(train)
    from pipespec.stages import cluster

    parts = cluster.part_files(path)
    counts = cluster.part_rows(parts)
    total = sum(counts)
    share = min(1.0, SCHEMA_ROWS / max(total, 1))
    frames = []
    for index, part in enumerate(parts):
        frame = cluster.read_part(part)
        if share < 1:
            rng = np.random.default_rng([seed, index])
            frame = frame[rng.random(len(frame)) < share]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), total


def _sha(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (names and contents, in order)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    try:
        for file in files:
            if path.is_dir():
                h.update(file.relative_to(path).as_posix().encode() + b"\0")
            with open(file, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
    except OSError as exc:
        raise StageError(f"cannot read input {path}: {exc}") from None
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    """Params as plain JSON (enums in params.yaml are already strings)."""
    return json.loads(json.dumps(value, default=str))
