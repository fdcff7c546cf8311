"""The ``load`` stage: read the dataset (a file or the embedded generator), drop the
columns the dataset config names, drop rows without a target, sample, write Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.tabular import write_table

if TYPE_CHECKING:
    import pandas as pd


def run(ctx: StageContext) -> None:
    ds = ctx.params["dataset"]
    frame = read_source(ds, seed=ctx.params["seed"], root=ctx.root)
    where = ds.get("path") or "the embedded dataset"
    target = ds["target"]
    if target not in frame.columns:
        raise DataError(
            f"target column '{target}' (dataset.target) is not in {where}",
            hint=f"Columns: {', '.join(map(str, frame.columns))}",
        )
    missing = [c for c in ds["drop"] if c not in frame.columns]
    if missing:
        raise DataError(f"dataset.drop names column(s) not in {where}: {', '.join(missing)}")
    frame = frame.drop(columns=list(ds["drop"]))
    unlabeled = int(frame[target].isna().sum())
    if unlabeled:
        console().print(f"  dropped {unlabeled} rows without a value in '{target}'")
        frame = frame[frame[target].notna()]
    frame = sample(frame, ds["sample"], seed=ctx.params["seed"])
    if frame.empty:
        raise DataError(f"no rows left to train on from {where}")
    frame = frame.reset_index(drop=True)
    write_table(frame, ctx.output("data"), {"target": target, "task": ds["task"]})
    console().print(f"  {len(frame):,} rows x {frame.shape[1]} columns -> {ctx.output('data')}")


def read_source(ds: Any, *, seed: int, root: Path) -> pd.DataFrame:
    """The raw table a dataset config describes."""
    import pandas as pd

    source = ds["source"]
    if source == "embedded":
        from pipespec.stages.embedded import generate

        rows = ds.get("rows") or 20000
        return generate(int(rows), seed)
    path_value = ds.get("path")
    if not path_value:
        raise ConfigError(f"dataset.path is required for dataset.source={source}")
    path = Path(path_value)
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        raise DataError(f"dataset file not found: {path_value} (dataset.path)")
    if source == "parquet":
        return pd.read_parquet(path)
    try:
        return pd.read_csv(
            path,
            sep=ds["sep"],
            header=0 if ds["header"] else None,
            names=list(ds["columns"]) if ds.get("columns") else None,
            na_values=list(ds["na_values"]) or None,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot read {path_value} as CSV (dataset.path): {exc}") from None


def sample(frame: pd.DataFrame, spec: Any, *, seed: int) -> pd.DataFrame:
    """A seeded sample by fraction or row count (both null: all rows)."""
    fraction, rows = spec.get("fraction"), spec.get("rows")
    if fraction is not None and rows is not None:
        raise ConfigError("set dataset.sample.fraction or dataset.sample.rows, not both")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ConfigError(f"dataset.sample.fraction must be in (0, 1], got {fraction}")
        return frame.sample(frac=fraction, random_state=seed).sort_index()
    if rows is not None and rows < len(frame):
        return frame.sample(n=int(rows), random_state=seed).sort_index()
    return frame
