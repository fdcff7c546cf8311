"""The ``load`` stage: read the dataset (a file or the embedded generator), drop the
columns the dataset config names, drop rows without a target and duplicate rows, sample,
write Parquet.

A separate test file (``dataset.test_path``) is read the same way and its rows are marked
in the reserved column ``_split`` so that the split stage keeps them as the test set.

One body for both backends: ``_load_part`` cleans one part of a file (locally the whole
file is one part; on Dask, each partition) as Arrow and writes it. Duplicates and
``sample.rows`` need the whole table: a first pass (``_hash_part``) hashes every row, and
the rows to drop or keep follow from the hashes. A row's fate in the sample is a seeded
number drawn from its content, so the same seed keeps the same rows on either backend,
however the file is partitioned.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.documents import ReadOptions, TableMeta
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.rows import INFER_ROWS, NUMBER_SHARE, SPLIT_COLUMN, uniform

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("seed", "dataset", "compute.backend", "compute.partition_rows")
INPUTS = ()
OUTPUTS = {"data": ("data/{stage}/data.parquet", "out")}
PATH_PARAMS = ("dataset.path", "dataset.snapshot")  # snapshot: a Spark table's files

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa


def run(ctx: StageContext) -> None:
    import numpy as np

    ds = ctx.params["dataset"].to_dict()
    if ds["source"] == "spark":  # a Spark table or query: read from its Parquet snapshot
        from pipespec.stages.spark_table import snapshot

        ds = snapshot(ds, ctx)
    seed = int(ctx.params["seed"])
    fraction, rows = _sample_spec(ds)
    keys = ["path"] + (["test_path"] if ds.get("test_path") else [])
    meta = TableMeta(target=ds["target"], task=ds["task"], weight=ds.get("weight"))
    with cluster.backend(ctx) as backend:
        sources = {key: _source(ds, key, seed=seed, root=ctx.root, ctx=ctx) for key in keys}
        _same_columns(ds, sources)
        if not backend.dask:  # the whole table: its reading is decided here, once
            coerced: dict[str, int] = {}
            sources = decide_reading(ds, sources, coerced)
            if coerced:  # counted in the model card (the package stage reads it from here)
                meta = dataclasses.replace(meta, coerced=dict(sorted(coerced.items())))
        parts = [(key, part) for key in keys for part in _parts(sources[key], backend.dask)]
        plan: dict[str, Any] = {"drop": {}, "fraction": fraction, "cut": None, "seed": seed}
        if ds.get("dedupe") or rows is not None:
            hashes = _reading(ds, backend.map, parts, _hash_part, ds, ctx.root,
                              what="hashing rows")  # fmt: skip
            if ds.get("dedupe"):
                plan["drop"] = _duplicates(hashes, [key for key, _ in parts])
            if rows is not None:
                plan["cut"] = _sample_cut(hashes, parts, plan["drop"], rows, seed)
                plan["before"] = sum(
                    len(hashes[i]) - len(plan["drop"].get(i, []))
                    for i, (key, _) in enumerate(parts)
                    if key == "path"
                )
        with parquet.Parts({"data": ctx.output("data")}, single=not backend.dask) as out:
            done = _reading(ds, backend.map, parts, _load_part, ds, ctx.root, plan, out, meta,
                            what="loading")  # fmt: skip
            total = int(np.sum([n for _, n, _, _ in done]))
            if total == 0:
                raise DataError(
                    f"no rows left to train on from {ds.get('path') or 'the embedded data'}"
                )
    unlabeled = sum(u for _, _, u, _ in done)
    duplicates = sum(len(v) for v in plan["drop"].values())
    where = _where(ds, "path")
    if duplicates:
        console().print(f"  dropped {duplicates} duplicate rows of {where}")
    if unlabeled:
        console().print(
            f"  dropped {unlabeled} rows of {where} without a value in '{ds['target']}'"
        )
    if rows is not None:
        kept_rows = sum(n for key, n, _, _ in done if key == "path")
        why = f"dataset.sample.rows={rows:,}"
        if plan["before"] > kept_rows:
            console().print(
                f"  sampled {kept_rows:,} of {plan['before']:,} rows of {where} (at most {why})"
            )
        else:
            console().print(f"  kept all {kept_rows:,} rows of {where}: no more than {why}")
    elif fraction is not None:
        console().print(f"  sampled {fraction:g} of the rows of {where} (dataset.sample.fraction)")
    width = len(done[0][3])
    more = f" in {len(parts)} partitions" if backend.dask else ""
    console().print(f"  {total:,} rows x {width} columns{more} -> {ctx.output('data')}")


def _sample_spec(ds: dict[str, Any]) -> tuple[float | None, int | None]:
    """(fraction or None, rows or None): checked at composition (``core.value_checks``)."""
    fraction, rows = ds["sample"].get("fraction"), ds["sample"].get("rows")
    return (None if fraction == 1 else fraction), (None if rows is None else int(rows))


def _where(ds: Any, key: str) -> str:
    return f"{ds.get(key)} (dataset.{key})" if ds.get(key) else "the embedded dataset"


def _resolve(value: str, root: Path, key: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        raise DataError(f"dataset file not found: {value} (dataset.{key})")
    return path


# --- reading the source ------------------------------------------------------------------


def read_source(ds: Any, key: str = "path", *, seed: int, root: Path) -> pd.DataFrame:
    """The raw table a dataset config describes (``key``: path or test_path) as pandas, read
    by the one reader that prediction and monitoring use too."""
    return _read_whole(ds, key, seed=seed, root=root).to_pandas()


def _read_whole(ds: Any, key: str, *, seed: int, root: Path) -> pa.Table:
    """The whole raw table, cleaned, as Arrow."""
    import pyarrow as pa

    from pipespec.bundle.reader import clean, format_of, read_arrow_rows

    source = ds["source"]
    if source == "embedded":
        if key == "test_path":
            raise ConfigError("dataset.test_path needs a file source (csv or parquet)")
        from pipespec.stages.embedded import generate

        frame = clean(generate(int(ds.get("rows") or 20000), seed), ReadOptions(), "embedded")
        return pa.Table.from_pandas(frame, preserve_index=False)
    if not ds.get(key):
        raise ConfigError(f"dataset.{key} is required for dataset.source={source}")
    path = _resolve(ds[key], root, key)
    options = ReadOptions.from_dataset(ds)
    where = f"{ds[key]} (dataset.{key})"
    table = read_arrow_rows(path, options, where=where)
    # pandas fills a short row's missing fields with NaN: a short row leaves the last column
    # empty, so the file is scanned only when that column has missing values
    last = table.num_columns - 1
    if format_of(path, options) == "csv" and last >= 0 and table[last].null_count:
        _refuse_short_rows(path, options, table.num_columns, where)
    return table


def _refuse_short_rows(path: Path, options: ReadOptions, width: int, where: str) -> None:
    """DataError naming the rows of a CSV file with fewer fields than its header: pandas
    would read the missing fields as missing values, shifting no column but changing the
    types and the values of the columns they leave empty. Blank and comment lines are
    skipped as pandas skips them."""
    import csv

    if len(options.sep) != 1:  # a regular-expression separator: pandas alone reads it
        return
    short: list[tuple[int, int, int]] = []  # (row after the header, line, fields)
    with open(path, encoding=options.encoding, newline="") as fh:
        lines = fh if options.comment is None else (
            line.split(options.comment, 1)[0] + ("\n" if options.comment in line else "")
            for line in fh
        )  # fmt: skip
        reader = csv.reader(lines, delimiter=options.sep, skipinitialspace=options.strip)
        row = 0 if options.header else 1
        for fields in reader:
            if not fields or (fields == [""] and width > 1):
                continue
            if row and len(fields) < width:
                short.append((row, reader.line_num, len(fields)))
            row += 1
    if not short:
        return
    shown = ", ".join(f"row {r} (line {n}): {k} fields" for r, n, k in short[:SHOWN])
    raise DataError(
        f"{where}: {len(short):,} row(s) with fewer fields than the {width} columns of the "
        f"header (rows counted from 1, after the header): {shown}"
        f"{', ...' if len(short) > SHOWN else ''}",
        hint="A short row would be read with its missing fields as missing values, changing "
        "those columns' types and values. Complete or remove these rows (a field left empty "
        f"keeps its separator: {width - 1} '{options.sep}' per row).",
    )


def _source(ds: dict[str, Any], key: str, *, seed: int, root: Path, ctx: StageContext) -> Any:
    """The raw table: read whole (local), or as a lazy Dask DataFrame."""
    if not ctx.dask:
        return _read_whole(ds, key, seed=seed, root=root)
    rows = int(ctx.params["compute"]["partition_rows"])
    return _dask_source(ds, key, seed=seed, root=root, rows=rows)


def _parts(source: Any, dask: bool) -> list[Any]:
    return list(source.to_delayed()) if dask else [source]


def _same_columns(ds: dict[str, Any], sources: dict[str, Any]) -> None:
    """The test file must have the training file's columns (its weight column aside)."""
    if "test_path" not in sources:
        return
    strip = bool(ds.get("strip"))

    def names(source: Any) -> list[str]:
        found = source.column_names if hasattr(source, "column_names") else source.columns
        return [str(c).strip() if strip else str(c) for c in found]

    train, test = names(sources["path"]), names(sources["test_path"])
    weight = ds.get("weight")
    if weight and weight in train and weight not in test:
        train = [c for c in train if c != weight]
    if train != test:
        raise DataError(
            f"{ds['test_path']} (dataset.test_path) has other columns than {ds['path']}: "
            f"{sorted(set(test) ^ set(train))}"
        )


# --- the reading contract, decided once ---------------------------------------------------

# A text column is read as numbers when this share of its values are numbers (featurize's
# own rule for numeric text), or when at least half are and every other token looks like a
# missing-value marker ('?', '-', 'n/a', ...): a numeric column with many markers.
MARKED_SHARE = 0.5
SHOWN = 5  # rows and tokens an error shows


def decide_reading(
    ds: dict[str, Any], sources: dict[str, pa.Table], coerced: dict[str, int] | None = None
) -> dict[str, pa.Table]:
    """The training file decides, once, how every file is read: the columns it leaves
    entirely empty are dropped (with a notice; they are no input), and the text columns that
    hold numbers are read as numbers, in every file. A token there that is not a finite
    number stops load, naming the column, rows, tokens and the fix, unless
    ``dataset.coerce_numeric`` reads it as missing, counted per column in ``coerced``
    (every file summed), which the model card reports."""
    train = sources["path"]
    target, weight = ds["target"], ds.get("weight")
    empty = [
        c for c in train.column_names
        if c not in (target, weight) and train.num_rows and train[c].null_count == train.num_rows
    ]  # fmt: skip
    if empty:
        shown = ", ".join(f"'{c}'" for c in empty)
        console().print(
            f"  dropped {len(empty)} column(s) without a single value in {_where(ds, 'path')}: "
            f"{shown} (not an input of the model)"
        )
    numeric = [c for c in train.column_names if c not in empty and _holds_numbers(ds, train, c)]
    out = {}
    for key, table in sources.items():
        table = table.drop_columns([c for c in empty if c in table.column_names])
        out[key] = _read_as_numbers(ds, table, [c for c in numeric if c in table.column_names],
                                    key, coerced)  # fmt: skip
    return out


def _holds_numbers(ds: dict[str, Any], table: pa.Table, column: str) -> bool:
    """A text column that training reads as numeric (declared ``dtypes`` decide alone)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipespec.bundle.columns import parse_floats
    from pipespec.bundle.reader import marker_like

    if column in ds["dtypes"] or column == ds.get("weight"):
        return False
    values = table[column]
    if pa.types.is_floating(values.type):
        return True  # already numbers: only non-finite values to look for
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    text = pc.utf8_trim_whitespace(pc.drop_null(values)).combine_chunks()
    text = text.filter(pc.not_equal(text, ""))[:INFER_ROWS]
    if not len(text):
        return False
    _, unreadable, _ = parse_floats(text)  # what read_numbers reads text as, without pandas
    share = 1 - float(unreadable.mean())
    if share >= NUMBER_SHARE:
        return True
    others = pc.unique(text.filter(pa.array(unreadable))).to_pylist()
    return share >= MARKED_SHARE and all(marker_like(t) for t in others)


def _read_as_numbers(
    ds: dict[str, Any],
    table: pa.Table,
    columns: list[str],
    key: str,
    coerced: dict[str, int] | None = None,
) -> pa.Table:
    """``columns`` of ``table`` as float64, by the reader that serves (``read_numbers``)."""
    import pyarrow as pa

    from pipespec.bundle.reader import read_numbers

    coerce = bool(ds.get("coerce_numeric"))
    where = _where(ds, key)
    for column in columns:
        series = table[column].to_pandas()
        numbers = read_numbers(series)
        refused = numbers.refused
        if refused.any():
            if not coerce:
                raise _not_numbers(ds, column, series, numbers, where)
            console().print(
                f"  read {int(refused.sum()):,} value(s) of '{column}' in {where} that are not "
                "finite numbers as missing (dataset.coerce_numeric)"
            )
            if coerced is not None:
                coerced[column] = coerced.get(column, 0) + int(refused.sum())
        if pa.types.is_floating(table[column].type) and not refused.any():
            continue
        index = table.column_names.index(column)
        table = table.set_column(index, column, pa.array(numbers.values, pa.float64(),
                                                         from_pandas=True))  # fmt: skip
        # pandas' metadata still names the column's old type: to_pandas would restore it
        metadata = dict(table.schema.metadata or {})
        metadata.pop(b"pandas", None)
        table = table.replace_schema_metadata(metadata or None)
    return table


def _not_numbers(
    ds: dict[str, Any], column: str, series: pd.Series, numbers: Any, where: str
) -> DataError:
    """The error of a numeric column holding tokens that are not finite numbers."""
    import numpy as np

    from pipespec.bundle.reader import MAX_MAGNITUDE, marker_like

    rows = np.flatnonzero(numbers.refused)
    shown = ", ".join(f"row {i + 1}: {str(series.iloc[i])!r}" for i in rows[:SHOWN])
    counts = series.iloc[rows].astype(str).value_counts()
    tokens = ", ".join(f"{t!r} x{n}" for t, n in counts.iloc[:SHOWN].items())
    texts = list(series[numbers.text].astype(str).value_counts().index)
    message = (
        f"column '{column}' of {where} holds numbers, and {len(rows):,} value(s) that are not "
        f"finite numbers (rows counted from 1, after the header): {shown}"
        f"{', ...' if len(rows) > SHOWN else ''}; tokens: {tokens}"
    )
    if texts:
        import shlex

        listed = ", ".join(f"'{t}'" for t in texts[:SHOWN])
        typed = shlex.quote("dataset.na_values=[" + ",".join(f'"{t}"' for t in texts[:SHOWN]) + "]")
        kind = "markers of a missing value" if all(marker_like(t) for t in texts) else "text"
        hint = (
            f"These look like {kind}. If they mean 'missing', declare them in the dataset's "
            f"YAML: `na_values: [{listed}]` under `dataset:` (on the command line: "
            f"{typed}). Or `dataset.coerce_numeric: true` reads every "
            f"non-number there as missing, counted; or `dataset.dtypes.{column}: str` keeps "
            "the column as text."
        )
    else:
        hint = (
            f"Infinity and numbers beyond +-{MAX_MAGNITUDE:g} are refused (the usual range and "
            "derived features would overflow). Clean them, or set `dataset.coerce_numeric: "
            "true` to read them as missing, counted."
        )
    return DataError(message, hint=hint)


# --- the body, on one part ---------------------------------------------------------------


def _checked(ds: dict[str, Any], table: Any, key: str, root: Path) -> pa.Table:
    """One part as Arrow, checked, without the dropped columns (rows untouched)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(table, pa.Table):
        from pipespec.bundle.reader import clean

        table = clean(table, ReadOptions.from_dataset(ds), _where(ds, key))
        table = pa.Table.from_pandas(table, preserve_index=False)
    where = _where(ds, key)
    target = ds["target"]
    if target not in table.column_names:
        raise not_found(f"target column '{target}' (dataset.target)", [target], table, where)
    if key == "path":
        _target_fits_task(ds, table[target], where)
    weight = ds.get("weight")
    if key == "path" and ds.get("weight_path"):
        weights = _read_weights(ds["weight_path"], root, table.num_rows)
        table = table.append_column(weight, pa.array(weights, pa.float64()))
    if weight is not None and key == "path":
        if weight not in table.column_names:
            raise not_found(f"weight column '{weight}' (dataset.weight)", [weight], table, where)
        column = table[weight]
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        if not numeric or (pc.min(column).as_py() or 0) < 0:
            raise DataError(f"weight column '{weight}' must hold non-negative numbers")
    missing = [c for c in ds["drop"] if c not in table.column_names]
    if missing:
        raise not_found(f"dataset.drop names column(s) {', '.join(missing)}", missing, table,
                        where)  # fmt: skip
    return table.drop_columns(list(ds["drop"]))


SEPARATOR_HINTS = {";": "\"dataset.sep=';'\"", "\t": "dataset.sep=tab", "|": "\"dataset.sep='|'\""}
MANY_CLASSES = 50  # a numeric multiclass target with more distinct values is a quantity


def not_found(what: str, names: list[str], table: Any, where: str) -> DataError:
    """A column the config names is not in the file: the close names (difflib, ignoring
    case), and, when the header is one column holding ';', a tab or '|', the separator."""
    import difflib

    columns = [str(c) for c in table.column_names]
    hints = []
    if len(columns) <= 2:
        header = " ".join(columns)
        for char, override in SEPARATOR_HINTS.items():
            if char in header:
                shown = "tab" if char == "\t" else char
                hints.append(
                    f"The header reads as one column holding '{shown}': the file looks "
                    f"'{shown}'-separated. Set `sep: {'tab' if char == chr(9) else repr(char)}`"
                    f" in the dataset's YAML, or {override} on the command line."
                )
                break
    lowered = {c.lower(): c for c in columns}
    for name in names:
        close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
        close += [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3)
                  if lowered[m] not in close]  # fmt: skip
        if close:
            hints.append(f"Did you mean {' or '.join(repr(c) for c in close[:3])} for '{name}'?")
    shown = ", ".join(columns[:40]) + (
        f", ... ({len(columns)} in all)" if len(columns) > 40 else ""
    )
    hints.append(f"Columns: {shown}")
    return DataError(f"{what} not in {where}", hint="\n".join(hints))


def _target_fits_task(ds: dict[str, Any], column: Any, where: str) -> None:
    """A numeric target with many values under a classification task is a quantity."""
    import pyarrow as pa
    import pyarrow.compute as pc

    task = ds["task"]
    if task == "regression":
        return
    numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    if not numeric:
        return
    values = pc.unique(pc.drop_null(column))
    count = len(values)
    whole = pa.types.is_integer(column.type) or bool(
        pc.all(pc.equal(values, pc.round(values))).as_py()
    )
    if (task == "binary" and count > 2) or (
        task == "multiclass" and (count > MANY_CLASSES or not whole)
    ):
        raise DataError(
            f"target '{ds['target']}' of {where} holds {count:,} distinct numbers, "
            f"under dataset.task={task}"
            + (" (a binary task needs 2 classes)" if task == "binary" else ""),
            hint="If it is a quantity to predict, set dataset.task=regression. If it holds "
            "classes, map them with features.target_map.",
        )


def _labeled(table: pa.Table, target: str) -> tuple[pa.Table, int]:
    """The rows with a target value, and how many had none."""
    import pyarrow.compute as pc

    column = table[target]
    if not column.null_count:
        return table, 0
    return table.filter(pc.is_valid(column)), column.null_count


def _row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of every row's values."""
    import pandas as pd

    return pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy()


def _hash_part(index: int, item: tuple[str, Any], ds: dict[str, Any], root: Path) -> np.ndarray:
    """The hash of every row the part keeps before duplicates and sampling."""
    key, table = item
    table, _ = _labeled(_checked(ds, table, key, root), ds["target"])
    return _row_hashes(table)


def _duplicates(hashes: list[np.ndarray], keys: list[str]) -> dict[int, np.ndarray]:
    """Positions (in each part's labelled rows) of rows whose hash was seen earlier in the
    same file."""
    import numpy as np

    drop: dict[int, np.ndarray] = {}
    for key in set(keys):
        index = [i for i, k in enumerate(keys) if k == key]
        values = np.concatenate([hashes[i] for i in index])
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


def _sample_cut(
    hashes: list[np.ndarray], parts: list[tuple[str, Any]], drop: dict[int, Any], rows: int,
    seed: int,
) -> float:  # fmt: skip
    """The largest number a row of the training file may draw and be in a sample of
    ``rows`` rows (every row when there are fewer)."""
    import numpy as np

    drawn = []
    for i, (key, _) in enumerate(parts):
        if key == "path":
            keep = np.ones(len(hashes[i]), dtype=bool)
            keep[drop.get(i, [])] = False
            drawn.append(uniform(hashes[i][keep], seed))
    numbers = np.sort(np.concatenate(drawn)) if drawn else np.array([])
    return float(numbers[rows - 1]) if rows < len(numbers) else 2.0


def _load_part(
    index: int,
    item: tuple[str, Any],
    ds: dict[str, Any],
    root: Path,
    plan: dict[str, Any],
    out: Any,
    meta: TableMeta,
) -> tuple[str, int, int, list[str]]:
    """Clean one part and write it; (file key, rows, unlabelled rows, columns)."""
    import numpy as np
    import pyarrow as pa

    key, table = item
    table, unlabeled = _labeled(_checked(ds, table, key, root), ds["target"])
    keep = None
    if index in plan["drop"]:
        keep = np.ones(table.num_rows, dtype=bool)
        keep[plan["drop"][index]] = False
    limit = plan["fraction"] if plan["cut"] is None else plan["cut"]
    if key == "path" and limit is not None:
        drawn = uniform(_row_hashes(table), plan["seed"])
        inside = drawn < limit if plan["cut"] is None else drawn <= limit
        keep = inside if keep is None else keep & inside
    if keep is not None:
        table = table.filter(keep)
    weight = ds.get("weight")
    if key == "test_path" and weight and weight not in table.column_names:
        table = table.append_column(weight, pa.array(np.ones(table.num_rows)))  # not weighted
    if ds.get("test_path"):
        marker = "test" if key == "test_path" else ""
        table = table.append_column(SPLIT_COLUMN, pa.array([marker] * table.num_rows, pa.string()))
    out.write("data", index, table, meta)
    return key, table.num_rows, unlabeled, table.column_names


def kept(ds: Any, frame: pd.DataFrame, key: str, root: Path) -> pd.DataFrame:
    """The rows of a whole raw file the stage keeps before sampling (labelled, without
    duplicates), with their row numbers in the file as the index: for tests and tools."""
    import numpy as np
    import pyarrow as pa

    ds = dict(ds.to_dict() if hasattr(ds, "to_dict") else ds)
    table = _checked(ds, pa.Table.from_pandas(frame, preserve_index=False), key, root)
    numbers = np.arange(table.num_rows)
    labeled = table[ds["target"]].is_valid().to_numpy(zero_copy_only=False)
    table, numbers = table.filter(labeled), numbers[labeled]
    if ds.get("dedupe"):
        keep = np.ones(table.num_rows, dtype=bool)
        keep[_duplicates([_row_hashes(table)], [key]).get(0, [])] = False
        table, numbers = table.filter(keep), numbers[keep]
    out = table.to_pandas()
    out.index = frame.index[numbers]
    return out


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


# --- compute=dask: the source as partitions ----------------------------------------------


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
            f"cannot read {ds.get('path')} (dataset.path): {type(exc).__name__}: {exc}",
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


def _blocksize(path: Path, rows: int) -> int:
    """Bytes per CSV block for about ``rows`` rows, from the first 1 MiB's line lengths."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    lines = max(1, head.count(b"\n"))
    return max(1 << 16, int(len(head) / lines * rows))
