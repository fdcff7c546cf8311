"""The featurize fitter: the transforms document for a training table.

Fitting walks the config in a fixed order, and each step is fitted on the output of the
steps before it: select and drop columns, infer column types (numbers stored as text, dates,
identifiers to leave out), rename, derived columns, imputation with optional missing
indicators, numeric transforms (winsorize, clip, log1p, quantile bins), categorical encoding
(LightGBM native codes with rare and unseen values in an 'other' bucket, or one-hot), then
the user's own transforms by import path. The statistics come from a ``Columns`` backend
(``pipespec.stages.fit_data``): the whole table in memory, or a Dask DataFrame's partitions,
the same document either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipespec.bundle.transforms import DATE_PARTS, FORMAT_VERSION, encode_target, load_custom
from pipespec.bundle.transforms import load as load_transforms
from pipespec.core.console import console
from pipespec.core.documents import TargetSpec, Transforms, from_json, plain, step_from
from pipespec.core.errors import ConfigError, DataError
from pipespec.core.expression import ExpressionError
from pipespec.core.expression import parse as parse_expression
from pipespec.stages.fit_data import Columns, InMemory
from pipespec.stages.rows import INFER_ROWS, NUMBER_SHARE

if TYPE_CHECKING:
    import pandas as pd

NUMERIC, CATEGORICAL, DATETIME = "numeric", "categorical", "datetime"
DEFAULT_DATE_PARTS = ["year", "month", "day", "dayofweek"]


def fit(
    train: pd.DataFrame, spec: Any, *, target: str, task: str, weight: str | None = None
) -> Transforms:
    """The transforms document for ``train``, a pandas table in memory."""
    columns = [c for c in train.columns if c not in (target, weight)]
    return fit_columns(InMemory(train, columns), spec, target=target, task=task, weight=weight)


def fit_columns(
    data: Columns, spec: Any, *, target: str, task: str, weight: str | None
) -> Transforms:
    """The transforms document from the statistics ``data`` gives (either backend of
    ``pipespec.stages.fit_data``); ``spec`` is the ``features`` config."""
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
