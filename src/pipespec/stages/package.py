"""The ``package`` stage: the production bundle in ``models/bundle/``, one DVC output.

It holds the trained model (LightGBM text), the fitted transforms (JSON), the train/serve
contract (``schema.json``: the input schema inferred from the raw training rows, the dataset's
reading options, the output and the serving policy), a reference profile of the training rows
and of the model's predictions on them (for drift monitoring), a model card (JSON and
Markdown) and a manifest of SHA-256 hashes. Written atomically; no timestamps and no hash of
pipespec's own code, so the same inputs and versions give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from pipespec import __version__
from pipespec.bundle import bundle as files
from pipespec.bundle.bundle import invalid_rows_error
from pipespec.bundle.card import markdown, versions
from pipespec.bundle.inputs import infer
from pipespec.bundle.profile import THRESHOLD_KEYS, reference
from pipespec.core.console import console
from pipespec.core.documents import (
    Card,
    CardModel,
    Contract,
    Output,
    ReadOptions,
    ServingPolicy,
    Strictness,
    TrainingData,
    dumps,
    to_json,
)
from pipespec.core.errors import ConfigError, DataError, StageError
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import read_table

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = (
    "seed",
    "dataset",
    "split",
    "features",
    "model",
    "evaluation",
    "env",
    "compute",
    "production",
)
INPUTS = ("model", "transforms", "train")
# optional 'valid' (evaluation.optimize_threshold picks the threshold on it) and 'metrics'
# (the train stage's, into the card); any input is hashed into the card
ANY_INPUTS = True
OUTPUTS = {"bundle": ("models/bundle", "out")}

REQUIRED = ("model", "transforms", "train")
SCHEMA_ROWS = 1_000_000  # training rows drawn from a partitioned table (compute=dask)
PROFILE_ROWS = 200_000  # training rows (seeded sample) the drift reference profile describes


def run(ctx: StageContext) -> None:
    import lightgbm as lgb

    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.transforms import load

    prod = ctx.params["production"].to_dict()
    dataset = ctx.params["dataset"]
    evaluation = ctx.params["evaluation"]
    seed = int(ctx.params["seed"])
    threads = int(ctx.params["compute"]["num_threads"])
    model_bytes = ctx.input("model").read_bytes()
    transforms_bytes = ctx.input("transforms").read_bytes()
    transforms = load(json.loads(transforms_bytes), str(ctx.input("transforms")))
    train, total_rows = _training_rows(ctx.input("train"), seed=seed)
    metrics: dict[str, Any] = {}
    if "metrics" in ctx.inputs:
        metrics = json.loads(ctx.input("metrics").read_text(encoding="utf-8"))
    label = transforms.target
    task, classes = label.task, label.classes
    missing = [c.name for c in transforms.inputs if c.name not in train.columns]
    if missing:
        raise DataError(
            f"input 'train' ({ctx.input('train')}) lacks feature column(s) {', '.join(missing)}: "
            "give the package stage the raw training split (split.train), not the featurized one"
        )

    ignored = sorted(
        {*dataset["drop"], *transforms.dropped, dataset.get("weight")} - {None, label.name}
    )
    schema = infer(train, transforms, range_margin=prod["range_margin"], ignored=ignored)
    policy = ServingPolicy(
        on_invalid=str(prod["on_invalid"]),
        max_records=int(prod["max_records"]),
        max_body_bytes=int(prod["max_body_bytes"]),
        range_margin=prod["range_margin"],
        strict=Strictness(**prod["strict"]),
        num_threads=threads,
    )
    output = Output(
        task=task,
        target=label.name,
        classes=classes,
        threshold=float(evaluation["threshold"]) if task == "binary" else None,
    )
    contract = Contract(schema, ReadOptions.from_dataset(dataset), output, policy)
    bundle = Bundle(
        path=ctx.output("bundle"),
        sha="",
        manifest={},
        transforms=transforms,
        contract=contract,
        profile={},
        card={},
        model_text=model_bytes.decode("utf-8"),
    )
    if task == "binary" and evaluation["optimize_threshold"]:
        contract = _optimized(ctx, bundle, contract, threads)
        bundle.contract = contract

    profiled = train
    if len(train) > PROFILE_ROWS:  # the schema sees every row; the profile needs a sample
        profiled = train.sample(n=PROFILE_ROWS, random_state=seed).sort_index()
    checked = bundle.check(profiled)
    scores = bundle.score(checked, threads=threads)
    bins = int(prod["profile_bins"])
    profile = reference(schema, checked, scores, task, classes or [], bins)
    profile["thresholds"] = {k: prod["monitor"][k] for k in THRESHOLD_KEYS}

    booster: lgb.Booster = bundle.booster
    hashes = {k: _sha(p) for k, p in sorted(ctx.inputs.items())}
    card = Card(
        name=f"{dataset['name']}-{ctx.params['model']['name']}",
        bundle_format=files.FORMAT_VERSION,
        env=ctx.params["env"]["name"],
        pipespec=__version__,
        model=CardModel(
            task=task,
            target=label.name,
            classes=classes,
            threshold=output.threshold,
            trees=booster.num_trees(),
            objective=_objective(model_bytes),
            feature_names=booster.feature_name(),
        ),
        features=[
            {
                **to_json(c),
                "categories": None if c.categories is None else len(c.categories),
            }
            for c in schema.columns
        ],
        ignored=list(schema.ignored),
        metrics=metrics,
        params=to_json(ctx.params.to_dict()),
        data={
            "train": TrainingData(
                sha256=hashes["train"],
                rows=total_rows,
                profiled_rows=len(profiled),
                columns=len(train.columns),
            )
        },
        inputs=hashes,
        versions=versions(),
        git=git_commit(ctx.root) if prod["git_commit"] else None,
    )
    contents = {
        files.MODEL: model_bytes,
        files.TRANSFORMS: transforms_bytes,
        files.SCHEMA: dumps(contract),
        files.PROFILE: dumps(profile),
        files.CARD: dumps(card),
        files.CARD_MD: markdown(to_json(card)).encode("utf-8"),
    }
    target = ctx.output("bundle")
    sha = files.write(target, contents)
    console().print(
        f"  bundle {sha[:12]}: {len(schema.columns)} input columns, {booster.num_trees()} trees, "
        f"profile of {len(profiled):,} training rows -> {target}"
    )


def _optimized(ctx: StageContext, bundle: Any, contract: Contract, threads: int) -> Contract:
    """The contract with the F1-best threshold on the raw valid rows, scored through the
    bundle's own path (``evaluation.optimize_threshold``)."""
    import dataclasses

    from pipespec.bundle.transforms import encode_target
    from pipespec.stages.evaluate import best_f1_threshold

    if "valid" not in ctx.inputs:
        raise ConfigError(
            f"stage '{ctx.name}': evaluation.optimize_threshold needs a 'valid' input "
            "(the raw valid split, split.valid)"
        )
    valid, _ = read_table(ctx.input("valid"))
    if valid.empty:
        raise ConfigError("evaluation.optimize_threshold needs a non-empty 'valid' input")
    checked = bundle.check(valid)
    if checked.n_invalid:
        raise invalid_rows_error(checked, f"input 'valid' ({ctx.input('valid')})")
    scores = bundle.score(checked, threads=threads)
    y = encode_target(bundle.transforms.target, valid[bundle.output.target])
    threshold = round(best_f1_threshold(y, scores), 6)
    return dataclasses.replace(
        contract, output=dataclasses.replace(contract.output, threshold=threshold)
    )


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
