"""The ``load`` stage: read the dataset (a file or the embedded generator), drop the
columns the dataset config names, drop rows without a target, sample, write Parquet.

A separate test file (``dataset.test_path``) is read the same way and its rows are marked
in the reserved column ``_split`` so that the split stage keeps them as the test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.tabular import write_table

if TYPE_CHECKING:
    import pandas as pd

SPLIT_COLUMN = "_split"
# Separators that are awkward to type on a command line.
SEPARATORS = {"\\t": "\t", "tab": "\t", "space": " "}


def run(ctx: StageContext) -> None:
    import pandas as pd

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
        {"target": ds["target"], "task": ds["task"], "weight": ds.get("weight")},
    )
    console().print(f"  {len(frame):,} rows x {frame.shape[1]} columns -> {ctx.output('data')}")


def _prepare(ds: Any, frame: pd.DataFrame, key: str, root: Path) -> pd.DataFrame:
    """Checks and clean-up shared by the main and the test file."""
    import pandas as pd

    where = f"{ds.get(key)} (dataset.{key})" if ds.get(key) else "the embedded dataset"
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
    if ds.get("dedupe"):
        before = len(frame)
        frame = frame.drop_duplicates()
        if len(frame) < before:
            console().print(f"  dropped {before - len(frame)} duplicate rows of {where}")
    unlabeled = int(frame[target].isna().sum())
    if unlabeled:
        console().print(f"  dropped {unlabeled} rows of {where} without a value in '{target}'")
        frame = frame[frame[target].notna()]
    return frame


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
    """The raw table a dataset config describes (``key``: path or test_path)."""
    import pandas as pd

    source = ds["source"]
    if source == "embedded":
        if key == "test_path":
            raise ConfigError("dataset.test_path needs a file source (csv or parquet)")
        from pipespec.stages.embedded import generate

        return generate(int(ds.get("rows") or 20000), seed)
    if not ds.get(key):
        raise ConfigError(f"dataset.{key} is required for dataset.source={source}")
    path = _resolve(ds[key], root, key)
    if source == "parquet":  # a file, or a directory of files (a partitioned dataset)
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {ds[key]} as Parquet (dataset.{key}): {exc}") from None
    else:
        frame = _read_csv(ds, key, path)
    frame.columns = [str(c) for c in frame.columns]
    if ds.get("strip"):
        frame.columns = [c.strip() for c in frame.columns]
        for column in frame.columns:
            if pd.api.types.is_string_dtype(frame[column]):
                frame[column] = frame[column].str.strip()
        if ds["na_values"]:  # a marker may have stood next to the spaces just stripped
            frame = frame.replace(list(ds["na_values"]), None)
    return _apply_dtypes(frame, ds, key)


def _read_csv(ds: Any, key: str, path: Path) -> pd.DataFrame:
    import pandas as pd

    names = list(ds["columns"]) if ds.get("columns") else None
    try:
        frame = pd.read_csv(
            path,
            sep=SEPARATORS.get(ds["sep"], ds["sep"]),
            header=0 if ds["header"] else None,
            names=names,
            na_values=list(ds["na_values"]) or None,
            keep_default_na=ds["keep_default_na"],
            skipinitialspace=bool(ds["strip"]),
            comment=ds.get("comment"),
            encoding=ds["encoding"],
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, LookupError) as exc:
        raise DataError(f"cannot read {ds[key]} as CSV (dataset.{key}): {exc}") from None
    if not ds["header"] and names is None:
        frame.columns = [f"Column_{i}" for i in range(frame.shape[1])]  # LightGBM's naming
    return frame


NA_MARKERS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?")
DTYPES = {"float": "float64", "int": "Int64", "str": "str", "category": "str", "bool": "boolean"}


def _apply_dtypes(frame: pd.DataFrame, ds: Any, key: str) -> pd.DataFrame:
    """dataset.dtypes overrides, with an error naming the column and a few bad values."""
    import pandas as pd

    for column, dtype in dict(ds["dtypes"]).items():
        if column not in frame.columns:
            raise DataError(f"dataset.dtypes.{column}: no such column in {ds[key]}")
        if dtype not in DTYPES:
            raise ConfigError(
                f"dataset.dtypes.{column}: unknown type '{dtype}'; types: {', '.join(DTYPES)}"
            )
        series = frame[column]
        if dtype in ("float", "int"):
            if not pd.api.types.is_numeric_dtype(series):  # 'NA', '' ... mean missing here
                series = series.where(~series.astype("str").str.strip().isin(NA_MARKERS), None)
            numbers = pd.to_numeric(series, errors="coerce")
            bad = series[numbers.isna() & series.notna()]
            if len(bad):
                examples = ", ".join(repr(v) for v in bad.unique()[:3])
                raise DataError(
                    f"column '{column}' (dataset.dtypes.{column}={dtype}) in {ds[key]}: "
                    f"{len(bad)} value(s) are not numbers, e.g. {examples}",
                    hint="Add them to dataset.na_values if they mean 'missing'.",
                )
            series = numbers
        frame[column] = series.astype(DTYPES[dtype])
    return frame


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
