"""The ``featurize`` stage: fit feature transforms on the training split only, save them as
human-readable JSON, and apply exactly those to every split with the one interpreter of
``pipespec.bundle.transforms`` (evaluation, batch prediction and serving run it too).

Fitting walks the config in a fixed order, and each step is fitted on the output of the
steps before it: select and drop columns, infer column types (numbers stored as text, dates,
identifiers to leave out), rename, derived columns, imputation with optional missing
indicators, numeric transforms (winsorize, clip, log1p, quantile bins), categorical encoding
(LightGBM native codes with rare and unseen values in an 'other' bucket, or one-hot), then
the user's own transforms by import path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipespec.bundle.columns import as_array, floats, text_keys, to_objects
from pipespec.bundle.transforms import DATE_PARTS, FORMAT_VERSION, encode_target, load_custom
from pipespec.bundle.transforms import load as load_transforms
from pipespec.bundle.transforms import run as run_steps
from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.core.documents import (
    CustomStep,
    Step,
    TableMeta,
    TargetSpec,
    Transforms,
    from_json,
    plain,
    step_from,
    to_json,
)
from pipespec.core.errors import ConfigError, DataError
from pipespec.core.expression import ExpressionError
from pipespec.core.expression import parse as parse_expression
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.rows import INFER_ROWS, NUMBER_SHARE

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("features", "dataset.target", "dataset.task", "dataset.weight", "compute.backend")
INPUTS = ("train",)
ANY_INPUTS = True  # valid: transformed too (the test rows are scored raw, through the bundle)
OUTPUTS = {
    "transforms": ("models/{stage}/transforms.json", "out"),
    "train": ("data/{stage}/train.parquet", "out"),
    "valid": ("data/{stage}/valid.parquet", "out"),
}

if TYPE_CHECKING:
    import pandas as pd

NUMERIC, CATEGORICAL, DATETIME = "numeric", "categorical", "datetime"
DEFAULT_DATE_PARTS = ["year", "month", "day", "dayofweek"]


def run(ctx: StageContext) -> None:
    """Fit on the training table (its statistics from the whole table in memory, or with
    Dask from its partitions: the same document either way), then apply the transforms to
    every part of every split with ``_featurize_part``."""
    dataset = ctx.params["dataset"]
    target, weight = dataset["target"], dataset["weight"]
    with cluster.backend(ctx) as backend:
        if backend.dask:
            train = parquet.frame(ctx.input("train"))
            data: Columns = Partitioned(
                train, [c for c in train.columns if c not in (target, weight)]
            )
            parts = {"train": parquet.part_files(ctx.input("train"))}
        else:
            frame, _ = parquet.read_table(ctx.input("train"))
            data = InMemory(frame, [c for c in frame.columns if c not in (target, weight)])
            parts = {"train": [frame]}
        transforms = _fit(data, ctx.params["features"], target=target, task=dataset["task"],
                          weight=weight)  # fmt: skip
        del data  # the fit's working columns: freed before the tables are featurized
        write_json(ctx.output("transforms"), to_json(transforms))
        custom = custom_classes(transforms)
        meta = table_meta(transforms, weight)
        rows = {}
        for name, path in ctx.inputs.items():
            if name not in ctx.outputs:
                continue
            with parquet.Parts({name: ctx.output(name)}, single=not backend.dask) as out:
                counts = backend.map(
                    parts.get(name) or parquet.part_files(path), _featurize_part, transforms,
                    weight, out, name, meta, custom, what=f"featurizing {name}",
                )  # fmt: skip
            rows[name] = sum(counts)
    n_cat = sum(1 for f in transforms.features if f.type == CATEGORICAL)
    console().print(
        f"  {len(transforms.features)} features ({n_cat} categorical) from "
        f"{len(transforms.inputs)} input columns, fitted on {rows.get('train', 0):,} training rows"
    )


def custom_classes(transforms: Transforms) -> dict[str, Any]:
    """The classes of the custom steps of a document this stage fitted from the project's
    own configuration (``features.custom``): imported by the import path the config names."""
    return {s.fn: load_custom(s.fn) for s in transforms.steps if isinstance(s, CustomStep)}


def fit(
    train: pd.DataFrame, spec: Any, *, target: str, task: str, weight: str | None = None
) -> Transforms:
    """The transforms document for ``train``."""
    columns = [c for c in train.columns if c not in (target, weight)]
    return _fit(InMemory(train, columns), spec, target=target, task=task, weight=weight)


def _fit(data: Columns, spec: Any, *, target: str, task: str, weight: str | None) -> Transforms:
    spec = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    all_columns = list(data.raw)
    columns = _select_and_drop([c for c in all_columns if c not in (target, weight)], spec)
    data.keep(columns)
    steps: list[dict[str, Any]] = []
    work = data.work  # the current columns (names; values for the in-memory table)

    def add(step: dict[str, Any]) -> None:
        data.add(step_from(step, "the fitted step"))
        steps.append(step)

    inputs = []
    types: dict[str, str] = {}
    declared_cat = spec.get("categorical")
    data.prefetch_counts([c for c in columns if _textual(data.head(c))])  # one pass for all
    for column in list(columns):
        kind, step = _infer(column, data, spec, declared_cat)
        if kind is None:
            data.drop(column)
            console().print(f"  '{column}' looks like an identifier (all values unique): left out")
            continue
        inputs.append({"name": column, "type": kind})
        if step is not None:
            add(step)
        if kind == DATETIME:
            assert step is not None
            data.drop(column)
            for part in step["parts"]:
                types[f"{column}_{part}"] = NUMERIC
        else:
            types[column] = kind
    input_names = {c["name"] for c in inputs}

    renames = {k: v for k, v in (spec.get("rename") or {}).items()}
    unknown = [k for k in renames if k not in input_names]
    if unknown:
        raise DataError(f"features.rename names column(s) not in the data: {', '.join(unknown)}")
    if renames:
        add({"op": "rename", "map": renames})
        types = {renames.get(k, k): v for k, v in types.items()}

    for name, expr in (spec.get("derived") or {}).items():
        try:
            names = set(parse_expression(str(expr)).columns)
        except ExpressionError as exc:  # checked at composition too (core.value_checks)
            raise ConfigError(f"features.derived.{name}: {exc.message}") from None
        uses = sorted(names & set(work))
        unknown = sorted(names - set(work))
        if unknown or not uses:
            raise ConfigError(
                f"features.derived.{name}: '{expr}' uses no known column"
                if not unknown
                else f"features.derived.{name}: unknown column(s) {', '.join(unknown)} in '{expr}'",
                hint=f"Columns at this point: {', '.join(work)}",
            )
        try:
            add({"op": "derive", "column": name, "expr": str(expr), "uses": uses})
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"features.derived.{name}: cannot compute '{expr}': {exc}") from None
        types[name] = NUMERIC

    indicators = bool(spec.get("missing_indicators"))
    for column, strategy in (spec.get("impute") or {}).items():
        if column not in types:
            raise DataError(f"features.impute names column '{column}', not in the features")
        add(_impute_step(column, data, strategy, types[column], indicators))
        if indicators:
            types[f"{column}_missing"] = NUMERIC

    for column, options in (spec.get("transforms") or {}).items():
        _check_numeric(column, types, "features.transforms")
        _numeric_steps(column, data, options or {}, add)

    onehot = spec.get("encoding", "native") == "onehot"
    data.prefetch_counts([c for c, kind in types.items() if kind == CATEGORICAL])
    for column, kind in list(types.items()):
        if kind != CATEGORICAL:
            continue
        step = _category_step(column, data, spec, onehot)
        add(step)
        if onehot:
            del types[column]
            types.update({f"{column}={c}": NUMERIC for c in step["categories"]})

    for path in spec.get("custom") or []:
        cls = load_custom(str(path))
        data.custom[str(path)] = cls
        state = cls().fit(data.frame(f"features.custom ({path})"))
        add({"op": "custom", "fn": str(path), "state": state})
        types = {c: types.get(c, NUMERIC) for c in work}

    features = []
    for column in work:
        feature: dict[str, Any] = {"name": column, "type": types.get(column, NUMERIC)}
        if feature["type"] == CATEGORICAL:
            step = next(s for s in steps if s["op"] == "categorical" and s["column"] == column)
            feature["categories"] = step["categories"]
        features.append(feature)
    return load_transforms(
        {
            "version": FORMAT_VERSION,
            "target": _label(data.labels(target, task), target, task, spec.get("target_map") or {}),
            "inputs": inputs,
            "steps": steps,
            "features": features,
            "dropped": [
                c for c in all_columns if c not in input_names and c not in (target, weight)
            ],
        },
        "the fitted transforms",
    )


def _select_and_drop(columns: list[str], spec: dict[str, Any]) -> list[str]:
    select, drop = spec.get("select"), list(spec.get("drop") or [])
    for key, names in (("select", select or []), ("drop", drop)):
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise DataError(
                f"features.{key} names column(s) not in the data: {', '.join(unknown)}",
                hint=f"Columns: {', '.join(columns)}",
            )
    if select is not None:
        columns = [c for c in columns if c in select]
    return [c for c in columns if c not in drop]


def _infer(
    column: str, data: Columns, spec: dict[str, Any], declared_cat: list[str] | None
) -> tuple[str | None, dict[str, Any] | None]:
    """(type, the step that converts it, if any); type None for an identifier to leave out."""
    import pandas as pd

    series = data.head(column)
    dates = spec.get("dates") or {}
    if column in dates or pd.api.types.is_datetime64_any_dtype(series):
        parts = list(dates.get(column) or DEFAULT_DATE_PARTS)
        bad = [p for p in parts if p not in DATE_PARTS]
        if bad:
            raise ConfigError(
                f"features.dates.{column}: unknown part(s) {bad}; parts: {', '.join(DATE_PARTS)}"
            )
        fmt = (
            None
            if pd.api.types.is_datetime64_any_dtype(series)
            else _date_format(series.dropna().astype("str"))
        )
        return DATETIME, {"op": "date_parts", "column": column, "parts": parts, "format": fmt}
    if declared_cat is not None and column in declared_cat:
        return CATEGORICAL, None
    if pd.api.types.is_bool_dtype(series):
        return NUMERIC, {"op": "to_numeric", "column": column}
    if pd.api.types.is_numeric_dtype(series):
        return NUMERIC, None
    text = series.dropna().iloc[:INFER_ROWS].astype("str").str.strip()
    text = text[text != ""]
    if len(text) and pd.to_numeric(text, errors="coerce").notna().mean() >= NUMBER_SHARE:
        return NUMERIC, {"op": "to_numeric", "column": column}
    if spec.get("infer_dates", True) and len(text) and _looks_like_dates(text):
        return DATETIME, {
            "op": "date_parts",
            "column": column,
            "parts": DEFAULT_DATE_PARTS,
            "format": _date_format(text),
        }
    if data.all_distinct(column):
        return None, None  # an identifier: nothing to learn from
    return CATEGORICAL, None


def _textual(series: pd.Series) -> bool:
    """Text that type inference may find to be an identifier (it counts the values)."""
    import pandas as pd

    return not (
        pd.api.types.is_numeric_dtype(series)
        or pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_datetime64_any_dtype(series)
    )


def _looks_like_dates(text: pd.Series) -> bool:
    import warnings

    import pandas as pd

    probe = text.iloc[:200]
    if not probe.str.contains(r"\d[-/.]\d", regex=True).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(probe, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= NUMBER_SHARE)


def _date_format(text: pd.Series) -> str:
    """The strftime format of the first value if pandas can tell it, else 'mixed'."""
    from pandas.tseries.api import guess_datetime_format

    first = text.iloc[0] if len(text) else ""
    return guess_datetime_format(str(first)) or "mixed"


def _check_numeric(column: str, types: dict[str, str], key: str) -> None:
    if column not in types:
        raise DataError(f"{key}.{column}: no such column", hint=f"Columns: {', '.join(types)}")
    if types[column] != NUMERIC:
        raise ConfigError(f"{key}.{column}: column is {types[column]}, not numeric")


def _numeric_steps(
    column: str, data: Columns, options: dict[str, Any], add: Callable[[dict[str, Any]], None]
) -> None:
    """Winsorize, clip, log1p, bins: each fitted on the column as the steps before left it."""
    import numpy as np

    known = {"winsorize", "clip", "log1p", "bins"}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(
            f"features.transforms.{column}: unknown option(s) {sorted(unknown)}; "
            f"options: {', '.join(sorted(known))}"
        )
    if "winsorize" in options:
        lo_q, hi_q = (float(q) for q in options["winsorize"])
        lo, hi = data.quantiles(column, [lo_q, hi_q])
        add({"op": "clip", "column": column, "lower": plain(lo), "upper": plain(hi)})
    if "clip" in options:
        lo, hi = options["clip"]
        add({"op": "clip", "column": column, "lower": lo, "upper": hi})
    if options.get("log1p"):
        add({"op": "log1p", "column": column})
    if options.get("bins"):
        n = int(options["bins"])
        edges = np.unique(np.asarray(data.quantiles(column, list(np.linspace(0, 1, n + 1)[1:-1]))))
        add({"op": "bin", "column": column, "edges": [plain(e) for e in edges]})


def _impute_step(
    column: str, data: Columns, strategy: Any, kind: str, indicator: bool
) -> dict[str, Any]:
    text = str(strategy)
    if text == "median":
        if kind != NUMERIC:
            raise ConfigError(f"features.impute.{column}: median needs a numeric column")
        value: Any = plain(data.quantiles(column, [0.5])[0])
    elif text == "most_frequent":
        counts = data.counts(column, text=False)
        value = plain(counts.index[0]) if len(counts) else None
    elif text.startswith("constant:"):
        value = text.partition(":")[2]
        if kind == NUMERIC:
            value = float(value)
    else:  # a number (the strategies were checked at composition, core.value_checks)
        value = float(strategy)
    return {"op": "impute", "column": column, "value": value, "indicator": indicator}


def _category_step(
    column: str, data: Columns, spec: dict[str, Any], onehot: bool
) -> dict[str, Any]:
    counts = data.counts(column, text=True)
    min_freq = int(spec.get("min_frequency") or 1)
    ordered = sorted(
        ((str(k), int(v)) for k, v in counts.items() if v >= min_freq),
        key=lambda kv: (-kv[1], kv[0]),
    )
    categories = [k for k, _ in ordered[: int(spec.get("max_categories") or 1000)]]
    if onehot:
        return {"op": "onehot", "column": column, "categories": categories}
    return {
        "op": "categorical",
        "column": column,
        "categories": categories,
        "other": bool(spec.get("other_bucket", True)),
    }


def _label(labels: pd.Series, target: str, task: str, mapping: dict[str, Any]) -> dict[str, Any]:
    """The target's description; ``labels``: its training values (or just the distinct ones)."""
    import pandas as pd

    label: dict[str, Any] = {"name": target, "task": task}
    if mapping:
        label["map"] = {str(k): plain(v) for k, v in mapping.items()}
    series = labels
    if mapping:
        series = series.map(lambda v: label["map"].get(str(v), v))
    if task in ("binary", "multiclass"):
        values = series.dropna().unique().tolist()
        classes = sorted({_key(v) for v in values}, key=_sort_key)
        if task == "binary" and len(classes) != 2:
            raise DataError(
                f"dataset.task is binary but target '{target}' has {len(classes)} classes "
                f"in the training split: {classes[:10]}",
                hint="Use dataset.task=multiclass, or map labels with features.target_map.",
            )
        label["classes"] = classes
        encode_target(from_json(TargetSpec, label), labels)  # every label maps to a class
    elif not pd.api.types.is_numeric_dtype(series):
        raise DataError(
            f"dataset.task is regression but target '{target}' is not numeric "
            f"(dtype {series.dtype})",
            hint="Map it with features.target_map or pick another dataset.target.",
        )
    return label


def _key(value: Any) -> str:
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _sort_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def table_meta(transforms: Transforms, weight: str | None) -> TableMeta:
    """What a downstream stage needs to know about a featurized table."""
    label = transforms.target
    return TableMeta(
        target=label.name,
        task=label.task,
        weight=weight,
        classes=label.classes,
        categorical=[f.name for f in transforms.features if f.type == CATEGORICAL],
        features=transforms.feature_names,
    )


# --- where the statistics come from --------------------------------------------------------


class Columns:
    """The training table as fitting sees it: the current columns after the steps added so
    far, and the statistics fitting needs of them. ``work`` maps the current column names to
    their values (in memory) or to None (partitioned); fitting only reads its keys."""

    raw: list[str]
    work: dict[str, Any]
    custom: dict[str, Any]  # the classes of features.custom, by import path

    def keep(self, columns: list[str]) -> None:
        raise NotImplementedError

    def add(self, step: Step) -> None:
        raise NotImplementedError

    def drop(self, column: str) -> None:
        raise NotImplementedError

    def head(self, column: str) -> pd.Series:
        """Values to infer the column's type from (its first rows at least)."""
        raise NotImplementedError

    def all_distinct(self, column: str) -> bool:
        """More than 50 rows, none missing, no value twice: an identifier."""
        raise NotImplementedError

    def quantiles(self, column: str, qs: list[float]) -> list[float]:
        raise NotImplementedError

    def counts(self, column: str, *, text: bool) -> pd.Series:
        """Counts of the non-missing values, most frequent first (``text``: as category keys)."""
        raise NotImplementedError

    def prefetch_counts(self, columns: list[str]) -> None:
        """Counts of several columns will be asked for: compute them together if that helps."""

    def frame(self, what: str) -> pd.DataFrame:
        raise NotImplementedError

    def labels(self, target: str, task: str) -> pd.Series:
        """The target's training values (the distinct ones are enough)."""
        raise NotImplementedError


class InMemory(Columns):
    """A pandas table: every statistic is exact. The columns steps touch are held as the
    interpreter holds them (``pipespec.bundle.transforms``); the others stay as read, for
    type inference."""

    def __init__(self, frame: pd.DataFrame, columns: list[str]) -> None:
        self._frame = frame
        self.raw = list(frame.columns)
        self.custom = {}
        self.keep(columns)

    def keep(self, columns: list[str]) -> None:
        self.work = {c: as_array(self._frame[c]) for c in columns}
        self._touched: set[str] = set()

    def add(self, step: Step) -> None:
        before = {k: id(v) for k, v in self.work.items()}
        run_steps(self.work, [step], self.custom)
        self._touched |= {k for k, v in self.work.items() if before.get(k) != id(v)}
        self._touched |= set(getattr(step, "map", {}).values())

    def drop(self, column: str) -> None:
        del self.work[column]

    def _series(self, column: str) -> pd.Series:
        import pandas as pd

        return pd.Series(to_objects(self.work[column]))

    def head(self, column: str) -> pd.Series:
        if column in self._frame.columns and column not in self._touched:
            return self._frame[column]
        return self._series(column)

    def all_distinct(self, column: str) -> bool:
        series = self.head(column)
        return bool(len(series) > 50 and series.notna().all() and series.nunique() == len(series))

    def quantiles(self, column: str, qs: list[float]) -> list[float]:
        import pandas as pd

        values = pd.Series(floats(self.work[column]))
        return [values.quantile(q) for q in qs]

    def counts(self, column: str, *, text: bool) -> pd.Series:
        import pandas as pd

        values = self.work[column]
        series = pd.Series(to_objects(text_keys(values) if text else values))
        return series.dropna().value_counts()

    def frame(self, what: str) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({k: to_objects(v) for k, v in self.work.items()})

    def labels(self, target: str, task: str) -> pd.Series:
        return self._frame[target]


class Partitioned(Columns):
    """A Dask DataFrame: statistics are computed on the cluster, partition by partition
    (quantiles are Dask's approximations); types are inferred from the first rows."""

    def __init__(self, frame: Any, columns: list[str]) -> None:
        self._frame = frame
        self.raw = list(frame.columns)
        self._sample = frame.head(INFER_ROWS, npartitions=-1)
        self._inputs = list(columns)
        self._steps: list[Step] = []
        self._head: dict[str, Any] = {}
        self._counts: dict[str, pd.Series] = {}
        self._rows: int | None = None
        self.work = {}
        self.custom = {}
        self.keep(columns)

    def keep(self, columns: list[str]) -> None:
        self._inputs = list(columns)
        self._head = {c: self._sample[c] for c in columns}
        self._sync()

    def _sync(self) -> None:
        self.work.clear()
        self.work.update(dict.fromkeys(self._head))

    def add(self, step: Step) -> None:
        import pandas as pd

        work = run_steps({k: as_array(v) for k, v in self._head.items()}, [step], self.custom)
        self._head = {k: pd.Series(to_objects(v)) for k, v in work.items()}
        self._steps.append(step)
        if isinstance(step, CustomStep):
            self._counts.clear()
        renamed = getattr(step, "map", {})
        for name in {getattr(step, "column", None), *renamed, *renamed.values()}:
            self._counts.pop(name, None)
        self._sync()

    def drop(self, column: str) -> None:
        del self._head[column]
        self._sync()

    def current(self) -> Any:
        """The table as the steps so far leave it (lazy)."""
        meta = _apply_steps(self._sample.iloc[:0], self._inputs, self._steps)
        return self._frame.map_partitions(
            _apply_steps, self._inputs, list(self._steps), meta=meta, align_dataframes=False
        )

    def head(self, column: str) -> pd.Series:
        return self._head[column]

    def all_distinct(self, column: str) -> bool:
        self.prefetch_counts([column])
        counts = self._counts[column]
        if self._rows is None:
            self._rows = int(self._frame.map_partitions(len).sum().compute())
        rows = self._rows
        return bool(rows > 50 and len(counts) == rows and int(counts.sum()) == rows)

    def quantiles(self, column: str, qs: list[float]) -> list[float]:
        """Exact, as in memory: the column alone is gathered (8 bytes a row), because Dask's
        quantiles are approximations and the document must not depend on the backend."""
        values = self.current()[column].astype("float64").compute()
        return [float(values.quantile(q)) for q in qs]

    def counts(self, column: str, *, text: bool) -> pd.Series:
        import pandas as pd

        textual = not pd.api.types.is_numeric_dtype(self._head[column])
        if not text or textual:
            self.prefetch_counts([column])
            return self._counts[column]
        keys = self.current()[column].map_partitions(_text_keys, meta=(column, "object"))
        return _ranked(keys.value_counts(dropna=True).compute())

    def prefetch_counts(self, columns: list[str]) -> None:
        import dask

        wanted = [c for c in columns if c not in self._counts]
        if not wanted:
            return
        table = self.current() if self._steps else self._frame  # (reads only these columns)
        work = [table[c].value_counts(dropna=True) for c in wanted]
        if self._rows is None:
            work.append(table.map_partitions(len).sum())
        found = dask.compute(*work)
        if self._rows is None:
            self._rows = int(found[-1])
        self._counts.update({c: _ranked(v) for c, v in zip(wanted, found, strict=False)})

    def frame(self, what: str) -> pd.DataFrame:
        raise ConfigError(
            f"{what} is not supported with compute=dask: a custom transform's fit takes the "
            "whole training table in memory",
            hint="Fit the features with compute=local, or express them with the built-in "
            "options (derived, transforms, impute).",
        )

    def labels(self, target: str, task: str) -> pd.Series:
        import pandas as pd

        if task == "regression":
            return self._sample[target]
        return pd.Series(self._frame[target].dropna().unique().compute())


def _apply_steps(frame: pd.DataFrame, inputs: list[str], steps: list[Step]) -> pd.DataFrame:
    import pandas as pd

    work = run_steps({c: as_array(frame[c]) for c in inputs}, steps)
    return pd.DataFrame({k: to_objects(v) for k, v in work.items()}, index=frame.index)


def _text_keys(series: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.Series(to_objects(text_keys(as_array(series))), index=series.index, dtype=object)


def _ranked(counts: pd.Series) -> pd.Series:
    """Counts, most frequent first, ties in the order of their values (stable across runs)."""
    keys = [str(k) for k in counts.index]
    order = sorted(range(len(counts)), key=lambda i: (-int(counts.iloc[i]), keys[i]))
    return counts.iloc[order]


def _featurize_part(
    index: int,
    path: Any,
    transforms: Transforms,
    weight: str | None,
    out: Any,
    name: str,
    meta: TableMeta,
    custom: dict[str, Any] | None = None,
) -> int:
    """Apply the transforms to one part (a file, or the table already in memory). Into one
    file (the local backend), a chunk of rows at a time, each written as a row group as it
    is made, so the features of a large table never sit in memory whole."""
    import pandas as pd

    from pipespec.bundle.transforms import apply

    size = parquet.CHUNK_ROWS
    if isinstance(path, pd.DataFrame):
        chunks: Any = (path.iloc[i : i + size] for i in range(0, max(len(path), 1), size))
    else:
        whole = not out.single
        chunks = (t.to_pandas() for t in parquet.chunks(path, whole=whole))
    rows = 0
    for frame in chunks:
        features = apply(transforms, frame, custom)
        if weight is not None and weight in frame.columns:
            features[weight] = frame[weight].astype("float64").to_numpy()
        out.write(name, index, features, meta)
        rows += len(features)
    return rows
