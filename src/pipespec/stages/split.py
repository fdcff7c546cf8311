"""The ``split`` stage: a seeded train/valid/test split, stratified by class for
classification so every split keeps the label balance. Rows that the load stage marked as
test (a separate test file) stay the test set; the rest is split into train and valid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.load import SPLIT_COLUMN
from pipespec.stages.parquet import read_table, write_table

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("seed", "split", "dataset.target", "dataset.task", "compute.backend")
INPUTS = ("data",)
OUTPUTS = {
    "train": ("data/{stage}/train.parquet", "out"),
    "valid": ("data/{stage}/valid.parquet", "out"),
    "test": ("data/{stage}/test.parquet", "out"),
}

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SPLITS = ("train", "valid", "test")


def run(ctx: StageContext) -> None:
    import numpy as np

    if ctx.dask:
        return run_dask(ctx)
    frame, meta = read_table(ctx.input("data"))
    spec = ctx.params["split"]
    fixed_test = None
    if SPLIT_COLUMN in frame.columns:
        fixed_test = (frame.pop(SPLIT_COLUMN) == "test").to_numpy()
    valid, test = _fractions(spec, fixed_test is not None)
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


def _fractions(spec: Any, fixed_test: bool) -> tuple[float, float]:
    valid, test = float(spec["valid"]), float(spec["test"])
    if fixed_test:
        test = 0.0  # the test file is the test set
    if valid < 0 or test < 0 or valid + test >= 1:
        raise ConfigError(
            f"split.valid + split.test must leave rows to train on (got {valid} + {test})"
        )
    return valid, test


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


# --- compute=dask ------------------------------------------------------------------------


def run_dask(ctx: StageContext) -> None:
    """The split partition by partition, without a shuffle: each row's split comes from a
    seeded hash of its global row number (of its group's value with ``split.group``), so it
    does not depend on how the table is partitioned. Shares are met in expectation, by class
    too; ``split.time`` cuts at quantiles of the time column computed with Dask."""
    from pipespec.stages import cluster

    spec = ctx.params["split"]
    files = cluster.part_files(ctx.input("data"))
    meta = cluster.table_meta(ctx.input("data"))
    fixed = SPLIT_COLUMN in cluster.column_names(files[0])
    valid, test = _fractions(spec, fixed)
    seed = int(ctx.params["seed"])
    plan: dict[str, Any] = {"valid": valid, "test": test, "seed": seed}
    outputs = {name: ctx.output(name) for name in SPLITS}
    with cluster.connect(ctx) as client:
        if spec.get("time"):
            cuts = _time_cuts(cluster.frame(ctx.input("data")), spec["time"], valid, test)
            plan["time"] = (spec["time"], cuts)
        elif spec.get("group"):
            plan["group"] = spec["group"]
        starts = cluster.offsets(cluster.part_rows(files))
        with cluster.Parts(outputs) as out:
            counts = cluster.run_parts(
                client, files, _split_part, starts, plan, out, meta, what="splitting"
            )
            totals = [sum(c[code] for c in counts) for code in range(len(SPLITS))]
            if totals[0] == 0:
                raise DataError(f"split 'train' is empty: {sum(totals)} rows are too few")
    for name, n in zip(SPLITS, totals, strict=True):
        console().print(f"  {name}: {n:,} rows")


def _time_cuts(frame: Any, column: str, valid: float, test: float) -> list[Any]:
    """The time at which valid starts and the one at which test starts (Dask quantiles)."""
    import pandas as pd

    if column not in frame.columns:
        raise ConfigError(
            f"split.time: no column '{column}' in the data",
            hint=f"Columns: {', '.join(frame.columns)}",
        )
    times = frame[column].map_partitions(_times, meta=(column, "float64"))
    if int(times.isna().sum().compute()):
        raise DataError(f"split.time: column '{column}' has missing or unreadable times")
    cuts = times.quantile([1 - test - valid, 1 - test]).compute()
    return [float(v) for v in pd.Series(cuts).to_numpy()]


def _times(column: pd.Series) -> pd.Series:
    """Times as comparable numbers (nanoseconds for dates)."""
    import numpy as np
    import pandas as pd

    values = column
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
        values = pd.to_datetime(values, errors="coerce", format="mixed")
    if pd.api.types.is_datetime64_any_dtype(values):
        numbers = values.astype("datetime64[ns]").to_numpy().astype("int64").astype("float64")
        return pd.Series(np.where(values.isna(), np.nan, numbers), index=column.index)
    return values.astype("float64")


def uniform(keys: np.ndarray, seed: int) -> np.ndarray:
    """A seeded number in [0, 1) per 64-bit key (splitmix64): the same key, the same number."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = keys.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _split_part(
    index: int, path: Path, starts: list[int], plan: dict[str, Any], out: Any, meta: Any
) -> list[int]:
    """Split one partition and write its three parts; the rows in each."""
    import numpy as np
    import pandas as pd

    from pipespec.stages.cluster import read_part

    frame = read_part(path)
    fixed = None
    if SPLIT_COLUMN in frame.columns:
        fixed = (frame.pop(SPLIT_COLUMN) == "test").to_numpy()
    valid, test = plan["valid"], plan["test"]
    if "time" in plan:
        column, (valid_cut, test_cut) = plan["time"]
        times = _times(frame[column]).to_numpy()
        parts = np.zeros(len(frame), dtype=np.int8)
        if test > 0:
            parts[times >= test_cut] = 2
        if valid > 0:
            parts[(times >= valid_cut) & (parts != 2)] = 1
    else:
        if "group" in plan:
            text = _column(frame, plan["group"], "split.group").astype("str").fillna("<missing>")
            keys = pd.util.hash_pandas_object(text, index=False).to_numpy()
        else:
            keys = np.arange(starts[index], starts[index] + len(frame), dtype=np.uint64)
        u = uniform(keys, plan["seed"])
        parts = np.where(u < test, 2, np.where(u < test + valid, 1, 0))
    if fixed is not None:
        parts[fixed] = 2  # the test file's rows (test is 0 then: no other row is test)
    counts = []
    for code, name in enumerate(SPLITS):
        part = frame[parts == code].reset_index(drop=True)
        out.write(name, index, part, meta)
        counts.append(len(part))
    return counts
