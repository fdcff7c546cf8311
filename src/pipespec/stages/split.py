"""The ``split`` stage: a seeded train/valid/test split, stratified by class for
classification so every split keeps the label balance. Rows that the load stage marked as
test (a separate test file) stay the test set; the rest is split into train and valid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.load import SPLIT_COLUMN
from pipespec.stages.tabular import read_table, write_table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SPLITS = ("train", "valid", "test")


def run(ctx: StageContext) -> None:
    import numpy as np

    frame, meta = read_table(ctx.input("data"))
    spec = ctx.params["split"]
    valid, test = float(spec["valid"]), float(spec["test"])
    fixed_test = None
    if SPLIT_COLUMN in frame.columns:
        fixed_test = (frame.pop(SPLIT_COLUMN) == "test").to_numpy()
        test = 0.0  # the test file is the test set
    if valid < 0 or test < 0 or valid + test >= 1:
        raise ConfigError(
            f"split.valid + split.test must leave rows to train on (got {valid} + {test})"
        )
    target = ctx.params["dataset"]["target"]
    stratify = spec.get("stratify", True) and ctx.params["dataset"]["task"] != "regression"
    if fixed_test is None:
        parts = assign(
            frame[target] if stratify else None, len(frame), valid, test, seed=ctx.params["seed"]
        )
    else:
        parts = np.full(len(frame), 2, dtype=np.int8)
        rest = np.flatnonzero(~fixed_test)
        labels = frame[target].iloc[rest] if stratify else None
        parts[rest] = assign(labels, len(rest), valid, 0.0, seed=ctx.params["seed"])
    for code, name in enumerate(SPLITS):
        part = frame[parts == code].reset_index(drop=True)
        if part.empty and name == "train":
            raise DataError(f"split 'train' is empty: {len(frame)} rows are too few")
        write_table(part, ctx.output(name), meta)
        console().print(f"  {name}: {len(part):,} rows")


def assign(labels: pd.Series | None, n: int, valid: float, test: float, *, seed: int) -> np.ndarray:
    """0/1/2 (train/valid/test) per row; within each class when ``labels`` is given."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=np.int8)
    if labels is None:
        groups = [np.arange(n)]
    else:
        codes = labels.astype("str").to_numpy()
        groups = [np.flatnonzero(codes == value) for value in sorted(set(codes))]
    for idx in groups:
        idx = idx[rng.permutation(len(idx))]
        n_test = round(len(idx) * test)
        n_valid = round(len(idx) * valid)
        out[idx[:n_test]] = 2
        out[idx[n_test : n_test + n_valid]] = 1
    return out
