"""The ``split`` stage: a seeded train/valid/test split, stratified by class for
classification so every split keeps the label balance. Rows that the load stage marked as
test (a separate test file) stay the test set; the rest is split into train and valid.

The same seed puts the same rows in the same split whatever the backend and however the
table is partitioned (see ``_plan``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.rows import SPLIT_COLUMN, uniform

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
    import pyarrow as pa

SPLITS = ("train", "valid", "test")


def run(ctx: StageContext) -> None:
    """One algorithm for both backends: a plan from the few columns it needs (the target,
    the time or the group column), then every part split by ``_split_part``."""
    spec = ctx.params["split"]
    files = parquet.part_files(ctx.input("data"))
    columns, meta = parquet.table_columns(ctx.input("data"))
    fixed = SPLIT_COLUMN in columns
    valid, test = _fractions(spec, fixed)
    rows = parquet.part_rows(files)
    stratify = spec.get("stratify", True) and ctx.params["dataset"]["task"] != "regression"
    plan = _plan(
        ctx.input("data"), columns, spec, valid, test,
        target=ctx.params["dataset"]["target"] if stratify else None,
        fixed=fixed, seed=int(ctx.params["seed"]),
    )  # fmt: skip
    outputs = {name: ctx.output(name) for name in SPLITS}
    with cluster.backend(ctx) as backend, parquet.Parts(outputs, single=not backend.dask) as out:
        counts = backend.map(
            files, _split_part, parquet.offsets(rows), plan, out, meta, what="splitting"
        )
        totals = [sum(c[code] for c in counts) for code in range(len(SPLITS))]
        if totals[0] == 0:
            raise DataError(f"split 'train' is empty: {sum(totals)} rows are too few")
    for name, n in zip(SPLITS, totals, strict=True):
        console().print(f"  {name}: {n:,} rows")


def _fractions(spec: Any, fixed_test: bool) -> tuple[float, float]:
    """The shares of valid and test (checked at composition, ``core.value_checks``)."""
    valid, test = float(spec["valid"]), float(spec["test"])
    if fixed_test:
        test = 0.0  # the test file is the test set
    return valid, test


def _needed(columns: list[str], name: str, key: str) -> None:
    if name not in columns:
        raise ConfigError(
            f"{key}: no column '{name}' in the data", hint=f"Columns: {', '.join(columns)}"
        )


def _plan(
    path: Path,
    columns: list[str],
    spec: Any,
    valid: float,
    test: float,
    *,
    target: str | None,
    fixed: bool,
    seed: int,
) -> dict[str, Any]:
    """What every part needs to split its rows as the whole table would be split.

    - ``time``: the newest rows are test, the ones before them valid (ties stay together):
      the two cut times, from the whole time column.
    - ``group``: each group's number is a seeded hash of its value; groups are taken in
      that order into test, then valid, until each share is met: two cuts on that number.
    - otherwise each row's number is a seeded hash of its global row number; within each
      class (``target``) the rows with the smallest numbers are test, the next valid, in
      the shares asked: two cuts per class.

    A row's split thus depends only on the data and the seed, never on how the table is
    partitioned or which backend runs.
    """
    import numpy as np

    plan: dict[str, Any] = {"valid": valid, "test": test, "seed": seed}
    wanted = [c for c in (spec.get("time"), spec.get("group")) if c]
    for name, key in ((spec.get("time"), "split.time"), (spec.get("group"), "split.group")):
        if name:
            _needed(columns, name, key)
    if not spec.get("time") and not spec.get("group") and target is not None:
        wanted.append(target)
    table = parquet.read_arrow(path, [*wanted, *([SPLIT_COLUMN] if fixed else [])])
    rest = np.ones(sum(parquet.part_rows(parquet.part_files(path))), dtype=bool)
    if fixed:
        rest = ~(table[SPLIT_COLUMN].to_numpy(zero_copy_only=False) == "test")
    if spec.get("time"):
        times = _times(table[spec["time"]], spec["time"])[rest]
        order = np.sort(times)
        n = len(order)
        test_cut = order[n - round(n * test)] if test > 0 and n else np.inf
        before = order[order < test_cut]
        k = round(n * valid)
        valid_cut = before[len(before) - k] if valid > 0 and k and len(before) else test_cut
        plan["time"] = (spec["time"], float(valid_cut), float(test_cut))
        return plan
    if spec.get("group"):
        hashed = _group_keys(table[spec["group"]])[rest]
        groups, counts = np.unique(hashed, return_counts=True)
        u = uniform(groups, seed)
        order = np.argsort(u, kind="stable")
        share = np.cumsum(counts[order]) / max(1, len(hashed))
        plan["group"] = spec["group"]
        plan["cuts"] = {"": _cuts(u[order], share, test, valid)}
        return plan
    u = uniform(np.flatnonzero(rest).astype(np.uint64), seed)
    codes, keys = _strata(table[target], len(rest)) if target is not None else _one(len(rest))
    codes = codes[rest]
    plan["target"] = target
    plan["cuts"] = {}
    for code, stratum in enumerate(keys):
        ranked = np.sort(u[codes == code])
        n = len(ranked)
        n_test, n_valid = round(n * test), round(n * valid)
        if not n:
            continue
        plan["cuts"][stratum] = (
            float(ranked[n_test - 1]) if n_test else -1.0,
            float(ranked[n_test + n_valid - 1]) if n_test + n_valid else -1.0,
        )
    return plan


def _cuts(u: np.ndarray, share: np.ndarray, test: float, valid: float) -> tuple[float, float]:
    """The largest number taken into test and into test or valid, where ``share`` is the
    cumulative share of rows up to each number."""
    import numpy as np

    eps = 1e-12
    in_test = np.flatnonzero(share <= test + eps)
    in_either = np.flatnonzero(share <= test + valid + eps)
    return (
        float(u[in_test[-1]]) if len(in_test) else -1.0,
        float(u[in_either[-1]]) if len(in_either) else -1.0,
    )


def _strata(column: pa.ChunkedArray, n: int) -> tuple[np.ndarray, list[str]]:
    """A class code per row, and each code's class as text (the plan's keys)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(pc.cast(column, pa.string())).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False) if n else np.zeros(0, np.int64)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def _one(n: int) -> tuple[np.ndarray, list[str]]:
    """One stratum holding every row."""
    import numpy as np

    return np.zeros(n, dtype=np.int8), [""]


def _group_keys(column: pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash per row of the group column's text (missing values are one group)."""
    import pandas as pd
    import pyarrow.compute as pc

    text = pc.fill_null(pc.cast(column, "string"), "<missing>")
    return pd.util.hash_array(text.to_numpy(zero_copy_only=False).astype(object))


def _times(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Times as comparable numbers (nanoseconds for dates); missing or unreadable: an error."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False).astype("float64")
    else:
        series = column.to_pandas()
        if not pd.api.types.is_datetime64_any_dtype(series):
            series = pd.to_datetime(series, errors="coerce", format="mixed")
        numbers = series.astype("datetime64[ns]").to_numpy().astype("int64").astype("float64")
        values = np.where(series.isna().to_numpy(), np.nan, numbers)
    if np.isnan(values).any():
        raise DataError(f"split.time: column '{name}' has missing or unreadable times")
    return values


def _split_part(
    index: int, path: Path, starts: list[int], plan: dict[str, Any], out: Any, meta: Any
) -> list[int]:
    """Split one part (Arrow, no pandas), a chunk at a time locally, and write its three
    pieces; the rows in each."""
    counts = [0, 0, 0]
    start = starts[index]
    for table in parquet.chunks(path, whole=not out.single):
        for code, piece in enumerate(_pieces(table, start, plan)):
            out.write(SPLITS[code], index, piece, meta)
            counts[code] += piece.num_rows
        start += table.num_rows
    return counts


def _pieces(table: pa.Table, start: int, plan: dict[str, Any]) -> list[pa.Table]:
    """The train, valid and test rows of ``table``, whose first row is row ``start``."""
    import numpy as np

    n = table.num_rows
    fixed = None
    if SPLIT_COLUMN in table.column_names:
        fixed = table[SPLIT_COLUMN].to_numpy(zero_copy_only=False) == "test"
        table = table.drop_columns([SPLIT_COLUMN])
    parts = np.zeros(n, dtype=np.int8)
    if "time" in plan:
        column, valid_cut, test_cut = plan["time"]
        times = _times(table[column], column)
        if plan["test"] > 0:
            parts[times >= test_cut] = 2
        if plan["valid"] > 0:
            parts[(times >= valid_cut) & (parts != 2)] = 1
    else:
        if "group" in plan:
            u = uniform(_group_keys(table[plan["group"]]), plan["seed"])
            codes, keys = _one(n)
        else:
            u = uniform(np.arange(start, start + n, dtype=np.uint64), plan["seed"])
            target = plan.get("target")
            codes, keys = _strata(table[target], n) if target else _one(n)
        for code, stratum in enumerate(keys):
            if stratum not in plan["cuts"]:
                continue  # a class only the test file has: those rows are test anyway
            test_cut, valid_cut = plan["cuts"][stratum]
            rows = codes == code
            parts[rows & (u <= valid_cut)] = 1
            parts[rows & (u <= test_cut)] = 2
    if fixed is not None:
        parts[fixed] = 2  # the test file's rows (test is 0 then: no other row is test)
    return [table.filter(parts == code) for code in range(len(SPLITS))]
