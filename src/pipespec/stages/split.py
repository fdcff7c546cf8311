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
    rest = np.arange(len(frame)) if fixed_test is None else np.flatnonzero(~fixed_test)
    parts = np.full(len(frame), 2, dtype=np.int8)
    sub = frame.iloc[rest]
    seed = ctx.params["seed"]
    if spec.get("time"):
        parts[rest] = by_time(_column(sub, spec["time"], "split.time"), valid, test)
    elif spec.get("group"):
        parts[rest] = by_group(_column(sub, spec["group"], "split.group"), valid, test, seed=seed)
    else:
        parts[rest] = assign(sub[target] if stratify else None, len(sub), valid, test, seed=seed)
    for code, name in enumerate(SPLITS):
        part = frame[parts == code].reset_index(drop=True)
        if part.empty and name == "train":
            raise DataError(f"split 'train' is empty: {len(frame)} rows are too few")
        write_table(part, ctx.output(name), meta)
        console().print(f"  {name}: {len(part):,} rows")


def _column(frame: pd.DataFrame, name: str, key: str) -> pd.Series:
    if name not in frame.columns:
        raise ConfigError(
            f"{key}: no column '{name}' in the data", hint=f"Columns: {', '.join(frame.columns)}"
        )
    return frame[name]


def by_time(column: pd.Series, valid: float, test: float) -> np.ndarray:
    """The newest rows are test, the ones before them valid (ties stay together)."""
    import numpy as np
    import pandas as pd

    values = column
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
        values = pd.to_datetime(values, errors="coerce", format="mixed")
    if values.isna().any():
        raise DataError(f"split.time: column '{column.name}' has missing or unreadable times")
    order = values.rank(method="min").to_numpy()
    n = len(order)
    out = np.zeros(n, dtype=np.int8)
    test_cut = np.sort(order)[n - round(n * test)] if test > 0 and n else np.inf
    rest_n = int((order < test_cut).sum())
    valid_cut = np.sort(order)[rest_n - round(n * valid)] if valid > 0 and rest_n else test_cut
    out[(order >= valid_cut) & (order < test_cut)] = 1
    out[order >= test_cut] = 2
    return out


def by_group(column: pd.Series, valid: float, test: float, *, seed: int) -> np.ndarray:
    """Whole groups go to one split, in a seeded order, until each split's share is met."""
    import numpy as np

    rng = np.random.default_rng(seed)
    keys = column.astype("str").fillna("<missing>").to_numpy()
    groups, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = rng.permutation(len(groups))
    share = np.cumsum(counts[order]) / len(keys)
    code_of_group = np.zeros(len(groups), dtype=np.int8)
    code_of_group[order[share <= test + 1e-12]] = 2
    code_of_group[order[(share > test + 1e-12) & (share <= test + valid + 1e-12)]] = 1
    return code_of_group[inverse]


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
