"""The ``load`` stage: read the dataset (a file or the embedded generator), drop the
columns the dataset config names, drop rows without a target, sample, write Parquet.

A separate test file (``dataset.test_path``) is read the same way and its rows are marked
in the reserved column ``_split`` so that the split stage keeps them as the test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.documents import ReadOptions, TableMeta
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import write_table

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("seed", "dataset", "compute.backend", "compute.partition_rows")
INPUTS = ()
OUTPUTS = {"data": ("data/{stage}/data.parquet", "out")}
PATH_PARAMS = ("dataset.path",)

if TYPE_CHECKING:
    import pandas as pd

SPLIT_COLUMN = "_split"


def run(ctx: StageContext) -> None:
    import pandas as pd

    if ctx.dask:
        return run_dask(ctx)
    ds = ctx.params["dataset"]
    seed = ctx.params["seed"]
    frame = _prepare(ds, read_source(ds, "path", seed=seed, root=ctx.root), "path", ctx.root)
    frame = sample(frame, ds["sample"], seed=seed)
    if ds.get("test_path"):
        test = _prepare(
            ds, read_source(ds, "test_path", seed=seed, root=ctx.root), "test_path", ctx.root
        )
        weight = ds.get("weight")
        if weight and weight in frame.columns and weight not in test.columns:
            test[weight] = 1.0  # test rows are scored, not weighted
        if list(test.columns) != list(frame.columns):
            raise DataError(
                f"{ds['test_path']} (dataset.test_path) has other columns than {ds['path']}: "
                f"{sorted(set(test.columns) ^ set(frame.columns))}"
            )
        frame[SPLIT_COLUMN] = ""
        test[SPLIT_COLUMN] = "test"
        frame = pd.concat([frame, test], ignore_index=True)
    if frame.empty:
        raise DataError(f"no rows left to train on from {ds.get('path') or 'the embedded data'}")
    frame = frame.reset_index(drop=True)
    write_table(
        frame,
        ctx.output("data"),
        TableMeta(target=ds["target"], task=ds["task"], weight=ds.get("weight")),
    )
    console().print(f"  {len(frame):,} rows x {frame.shape[1]} columns -> {ctx.output('data')}")


def _prepare(ds: Any, frame: pd.DataFrame, key: str, root: Path) -> pd.DataFrame:
    """Checks and clean-up shared by the main and the test file."""
    frame, duplicates, unlabeled = _clean_rows(ds, frame, key, root)
    where = _where(ds, key)
    if duplicates:
        console().print(f"  dropped {duplicates} duplicate rows of {where}")
    if unlabeled:
        console().print(
            f"  dropped {unlabeled} rows of {where} without a value in '{ds['target']}'"
        )
    return frame


def _where(ds: Any, key: str) -> str:
    return f"{ds.get(key)} (dataset.{key})" if ds.get(key) else "the embedded dataset"


def _clean_rows(
    ds: Any, frame: pd.DataFrame, key: str, root: Path, *, dedupe: bool = True
) -> tuple[pd.DataFrame, int, int]:
    """(rows kept, duplicates dropped, unlabeled rows dropped); errors name the column."""
    import pandas as pd

    where = _where(ds, key)
    target = ds["target"]
    if target not in frame.columns:
        raise DataError(
            f"target column '{target}' (dataset.target) is not in {where}",
            hint=f"Columns: {', '.join(map(str, frame.columns))}",
        )
    if key == "path" and ds.get("weight_path"):
        weights = _read_weights(ds["weight_path"], root, len(frame))
        frame[ds["weight"]] = weights
    weight = ds.get("weight")
    if weight is not None and key == "path":
        if weight not in frame.columns:
            raise DataError(f"weight column '{weight}' (dataset.weight) is not in {where}")
        if not pd.api.types.is_numeric_dtype(frame[weight]) or (frame[weight] < 0).any():
            raise DataError(f"weight column '{weight}' must hold non-negative numbers")
    missing = [c for c in ds["drop"] if c not in frame.columns]
    if missing:
        raise DataError(f"dataset.drop names column(s) not in {where}: {', '.join(missing)}")
    frame = frame.drop(columns=list(ds["drop"]))
    duplicates = 0
    if ds.get("dedupe") and dedupe:
        before = len(frame)
        frame = frame.drop_duplicates()
        duplicates = before - len(frame)
    unlabeled = int(frame[target].isna().sum())
    if unlabeled:
        frame = frame[frame[target].notna()]
    return frame, duplicates, unlabeled


def _read_weights(value: str, root: Path, rows: int) -> Any:
    import numpy as np

    path = _resolve(value, root, "weight_path")
    try:
        weights = np.loadtxt(path, dtype="float64", ndmin=1)
    except ValueError as exc:
        raise DataError(f"cannot read weights from {value} (dataset.weight_path): {exc}") from None
    if len(weights) != rows:
        raise DataError(f"{value} (dataset.weight_path) has {len(weights)} weights for {rows} rows")
    return weights


def _resolve(value: str, root: Path, key: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        raise DataError(f"dataset file not found: {value} (dataset.{key})")
    return path


def read_source(ds: Any, key: str = "path", *, seed: int, root: Path) -> pd.DataFrame:
    """The raw table a dataset config describes (``key``: path or test_path), read by the
    one reader that prediction and monitoring use too."""
    from pipespec.bundle.reader import read_rows
    from pipespec.core.documents import ReadOptions

    source = ds["source"]
    if source == "embedded":
        if key == "test_path":
            raise ConfigError("dataset.test_path needs a file source (csv or parquet)")
        from pipespec.stages.embedded import generate

        return generate(int(ds.get("rows") or 20000), seed)
    if not ds.get(key):
        raise ConfigError(f"dataset.{key} is required for dataset.source={source}")
    path = _resolve(ds[key], root, key)
    return read_rows(path, ReadOptions.from_dataset(ds), where=f"{ds[key]} (dataset.{key})")


def sample(frame: pd.DataFrame, spec: Any, *, seed: int) -> pd.DataFrame:
    """A seeded sample by fraction or row count (both null: all rows)."""
    fraction, rows = spec.get("fraction"), spec.get("rows")
    if fraction is not None and rows is not None:
        raise ConfigError("set dataset.sample.fraction or dataset.sample.rows, not both")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ConfigError(f"dataset.sample.fraction must be in (0, 1], got {fraction}")
        if fraction == 1:
            return frame
        return frame.sample(frac=fraction, random_state=seed).sort_index()
    if rows is not None and rows < len(frame):
        return frame.sample(n=int(rows), random_state=seed).sort_index()
    return frame


# --- compute=dask ------------------------------------------------------------------------


def run_dask(ctx: StageContext) -> None:
    """The same stage partition by partition: the table becomes a directory of Parquet parts.

    Rows keep their order. ``dedupe`` is global (a first pass hashes every row);
    ``sample.fraction`` draws each partition with its own seeded generator.
    """
    import numpy as np

    from pipespec.stages import cluster

    ds = ctx.params["dataset"].to_dict()
    seed = int(ctx.params["seed"])
    if ds.get("weight_path"):
        raise ConfigError(
            "dataset.weight_path is not supported with compute=dask",
            hint="Put the weights in a column of the data and name it in dataset.weight.",
        )
    if ds["sample"].get("rows") is not None:
        raise ConfigError(
            "dataset.sample.rows is not supported with compute=dask (it needs a global count)",
            hint="Use dataset.sample.fraction.",
        )
    fraction = ds["sample"].get("fraction")
    if fraction is not None and not 0 < fraction <= 1:
        raise ConfigError(f"dataset.sample.fraction must be in (0, 1], got {fraction}")
    rows = int(ctx.params["compute"]["partition_rows"])
    keys = ["path"] + (["test_path"] if ds.get("test_path") else [])
    meta = TableMeta(target=ds["target"], task=ds["task"], weight=ds.get("weight"))
    with cluster.connect(ctx) as client:
        parts = [
            (key, part)
            for key in keys
            for part in _dask_source(ds, key, seed=seed, root=ctx.root, rows=rows).to_delayed()
        ]
        drop: dict[int, Any] = {}
        if ds.get("dedupe"):
            hashes = _reading(ds, cluster.run_parts, client, parts, _hash_part, ds, ctx.root,
                              what="hashing rows")  # fmt: skip
            drop = _duplicates(hashes, [key for key, _ in parts])
        with cluster.Parts({"data": ctx.output("data")}) as out:
            done = _reading(ds, cluster.run_parts, client, parts, _load_part, ds, seed, ctx.root,
                            out, meta, drop, what="loading")  # fmt: skip
            columns = {tuple(c) for key, _, _, c in done if key == "path"}
            test_columns = {tuple(c) for key, _, _, c in done if key == "test_path"}
            if len(columns | test_columns) > 1:
                differ = sorted(set().union(*columns) ^ set().union(*test_columns))
                raise DataError(
                    f"{ds.get('test_path') or 'the partitions'} have other columns than "
                    f"{ds.get('path')}: {differ}"
                )
            total = int(np.sum([n for _, n, _, _ in done]))
            if total == 0:
                raise DataError(f"no rows left to train on from {ds.get('path') or 'the data'}")
    unlabeled = sum(u for _, _, u, _ in done)
    duplicates = sum(len(v) for v in drop.values())
    if duplicates:
        console().print(f"  dropped {duplicates} duplicate rows")
    if unlabeled:
        console().print(f"  dropped {unlabeled} rows without a value in '{ds['target']}'")
    width = len(next(iter(columns | test_columns)))
    console().print(
        f"  {total:,} rows x {width} columns in {len(parts)} partitions -> {ctx.output('data')}"
    )


def _reading(ds: dict[str, Any], func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``func``; a reader's error (raised on a worker) names the dataset file, and for
    Dask's wrong guess of a CSV column's type, the column and the setting that fixes it."""
    import re

    try:
        return func(*args, **kwargs)
    except (ValueError, TypeError, UnicodeDecodeError, OSError) as exc:
        text = str(exc)
        if "Mismatched dtypes" in text:
            columns = re.findall(r"^\|\s*(\S.*?)\s*\|\s*\S+\s*\|\s*\S+\s*\|$", text, re.M)
            columns = [c for c in columns if c != "Column"]
            listed = ", ".join(f"'{c}'" for c in columns) or "some columns"
            name = columns[0] if columns else "COLUMN"
            raise DataError(
                f"cannot read {ds.get('path')} (dataset.path) with compute=dask: {listed} "
                "change type further down the file than the first block Dask infers types from",
                hint=f"Declare the type in dataset.dtypes: `dtypes: {{{name}: str}}` in the "
                f"dataset's YAML, or `+dataset.dtypes.{name}=str` (or float, int) on the "
                "command line.",
            ) from None
        raise DataError(
            f"cannot read {ds.get('path')} (dataset.path) with compute=dask: "
            f"{type(exc).__name__}: {exc}",
        ) from None


def _dask_source(ds: dict[str, Any], key: str, *, seed: int, root: Path, rows: int) -> Any:
    """The raw table as a lazy Dask DataFrame, about ``rows`` rows per partition."""
    import dask.dataframe as dd

    source = ds["source"]
    if source == "embedded":
        if key == "test_path":
            raise ConfigError("dataset.test_path needs a file source (csv or parquet)")
        from pipespec.stages.embedded import generate

        table = generate(int(ds.get("rows") or 20000), seed)
        return dd.from_pandas(table, npartitions=max(1, -(-len(table) // rows)), sort=False)
    if not ds.get(key):
        raise ConfigError(f"dataset.{key} is required for dataset.source={source}")
    path = _resolve(ds[key], root, key)
    try:
        if source == "parquet":
            return dd.read_parquet(str(path), split_row_groups="adaptive")
        names = list(ds["columns"]) if ds.get("columns") else None
        table = dd.read_csv(
            str(path),
            blocksize=_blocksize(path, rows),
            **ReadOptions.from_dataset(ds).csv_kwargs(),
            sample=1 << 20,
            # declared columns are read as text and converted by clean(), like locally
            dtype={str(c): "object" for c in ds["dtypes"]} or None,
        )
    except (ValueError, OSError, UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"cannot read {ds[key]} (dataset.{key}): {exc}") from None
    if not ds["header"] and names is None:
        table.columns = [f"Column_{i}" for i in range(len(table.columns))]
    return table


def _clean(table: pd.DataFrame, ds: dict[str, Any], key: str) -> pd.DataFrame:
    """One partition cleaned as ``read_rows`` cleans a whole file."""
    from pipespec.bundle.reader import clean

    return clean(table, ReadOptions.from_dataset(ds), f"{ds.get(key)} (dataset.{key})")


def _blocksize(path: Path, rows: int) -> int:
    """Bytes per CSV block for about ``rows`` rows, from the first 1 MiB's line lengths."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    lines = max(1, head.count(b"\n"))
    return max(1 << 16, int(len(head) / lines * rows))


def _hash_part(index: int, item: tuple[str, Any], ds: dict[str, Any], root: Path) -> Any:
    """A 64-bit hash of every row, as the stage will keep it (before dropping duplicates)."""
    import pandas as pd

    key, table = item
    table, _, _ = _clean_rows(ds, _clean(table, ds, key), key, root, dedupe=False)
    return pd.util.hash_pandas_object(table, index=False).to_numpy()


def _duplicates(hashes: list[Any], keys: list[str]) -> dict[int, Any]:
    """Positions (after clean-up) of rows whose hash was seen earlier in the same file."""
    import numpy as np

    drop: dict[int, Any] = {}
    for key in set(keys):
        index = [i for i, k in enumerate(keys) if k == key]
        values = np.concatenate([hashes[i] for i in index]) if index else np.array([])
        _, first = np.unique(values, return_index=True)
        duplicate = np.ones(len(values), dtype=bool)
        duplicate[first] = False
        start = 0
        for i in index:
            n = len(hashes[i])
            where = np.flatnonzero(duplicate[start : start + n])
            if len(where):
                drop[i] = where
            start += n
    return drop


def _load_part(
    index: int,
    item: tuple[str, Any],
    ds: dict[str, Any],
    seed: int,
    root: Path,
    out: Any,
    meta: TableMeta,
    drop: dict[int, Any],
) -> tuple[str, int, int, list[str]]:
    """Clean one partition and write it; (file key, rows, unlabeled rows, columns)."""
    import numpy as np

    key, table = item
    table, _, unlabeled = _clean_rows(ds, _clean(table, ds, key), key, root, dedupe=False)
    if index in drop:
        keep = np.ones(len(table), dtype=bool)
        keep[drop[index]] = False
        table = table[keep]
    fraction = ds["sample"].get("fraction")
    if key == "path" and fraction is not None and fraction < 1:
        rng = np.random.default_rng([seed, index])
        table = table[rng.random(len(table)) < fraction]
    weight = ds.get("weight")
    if key == "test_path" and weight and weight not in table.columns:
        table[weight] = 1.0
    if ds.get("test_path"):
        table[SPLIT_COLUMN] = "test" if key == "test_path" else ""
    table = table.reset_index(drop=True)
    out.write("data", index, table, meta)
    return key, len(table), unlabeled, list(table.columns)
