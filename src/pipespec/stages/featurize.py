"""The ``featurize`` stage: fit feature transforms on the training split only, save them as
human-readable JSON, and apply exactly those to every split (the serving path applies the
same file with ``pipespec.bundle.transforms.apply``).

Fitting walks the config in a fixed order, and each step is fitted on the output of the
steps before it: select and drop columns, infer column types (numbers stored as text, dates,
identifiers to leave out), rename, derived columns, imputation with optional missing
indicators, numeric transforms (winsorize, clip, log1p, quantile bins), categorical encoding
(LightGBM native codes with rare and unseen values in an 'other' bucket, or one-hot), then
the user's own transforms by import path.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pipespec.bundle.transforms import (
    DATE_PARTS,
    FORMAT_VERSION,
    OPS,
    encode_target,
    load_custom,
    plain,
)
from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.context import StageContext
from pipespec.stages.tabular import read_table, write_table

if TYPE_CHECKING:
    import pandas as pd

NUMERIC, CATEGORICAL, DATETIME = "numeric", "categorical", "datetime"
DEFAULT_DATE_PARTS = ["year", "month", "day", "dayofweek"]
INFER_ROWS = 20_000  # types are inferred from the first rows (identifiers from all)
NUMBER_SHARE = 0.95  # a text column is numeric when this share of its values parse as numbers
MATH_FUNCTIONS = {"log", "log1p", "exp", "expm1", "sqrt", "abs", "sin", "cos", "tan", "arctan"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def run(ctx: StageContext) -> None:
    from pipespec.bundle.transforms import apply

    train, _ = read_table(ctx.input("train"))
    dataset = ctx.params["dataset"]
    weight = dataset["weight"]
    transforms = fit(
        train, ctx.params["features"], target=dataset["target"], task=dataset["task"], weight=weight
    )
    write_json(ctx.output("transforms"), transforms)
    meta = table_meta(transforms)
    meta["weight"] = weight
    for name, path in ctx.inputs.items():
        if name not in ctx.outputs:
            continue
        frame = train if name == "train" else read_table(path)[0]
        features = apply(transforms, frame)
        if weight is not None and weight in frame.columns:  # sample weights pass through
            features[weight] = frame[weight].astype("float64").to_numpy()
        write_table(features, ctx.output(name), meta)
    n_cat = sum(1 for f in transforms["features"] if f["type"] == CATEGORICAL)
    console().print(
        f"  {len(transforms['features'])} features ({n_cat} categorical) from "
        f"{len(transforms['inputs'])} input columns, fitted on {len(train):,} training rows"
    )


def fit(
    train: pd.DataFrame, spec: Any, *, target: str, task: str, weight: str | None = None
) -> dict[str, Any]:
    """The transforms document for ``train`` (plain JSON-able data)."""
    spec = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    columns = [c for c in train.columns if c not in (target, weight)]
    columns = _select_and_drop(columns, spec)
    steps: list[dict[str, Any]] = []
    work: dict[str, Any] = {c: train[c] for c in columns}

    def add(step: dict[str, Any]) -> None:
        OPS[step["op"]](work, step)
        steps.append(step)

    inputs = []
    types: dict[str, str] = {}
    declared_cat = spec.get("categorical")
    for column in list(columns):
        kind, step = _infer(column, work[column], spec, declared_cat)
        if kind is None:
            del work[column]
            console().print(f"  '{column}' looks like an identifier (all values unique): left out")
            continue
        inputs.append({"name": column, "type": kind})
        if step is not None:
            add(step)
        if kind == DATETIME:
            assert step is not None
            del work[column]
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
        names = set(_NAME.findall(str(expr))) - MATH_FUNCTIONS
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
        except Exception as exc:  # pandas' expression errors are many and unrelated
            raise ConfigError(f"features.derived.{name}: cannot compute '{expr}': {exc}") from None
        types[name] = NUMERIC

    indicators = bool(spec.get("missing_indicators"))
    for column, strategy in (spec.get("impute") or {}).items():
        if column not in types:
            raise DataError(f"features.impute names column '{column}', not in the features")
        add(_impute_step(column, work[column], strategy, types[column], indicators))
        if indicators:
            types[f"{column}_missing"] = NUMERIC

    for column, options in (spec.get("transforms") or {}).items():
        _check_numeric(column, types, "features.transforms")
        for step in _numeric_steps(column, work[column], options or {}):
            add(step)

    onehot = spec.get("encoding", "native") == "onehot"
    for column, kind in list(types.items()):
        if kind != CATEGORICAL:
            continue
        step = _category_step(column, work[column], spec, onehot)
        add(step)
        if onehot:
            del types[column]
            types.update({f"{column}={c}": NUMERIC for c in step["categories"]})

    for path in spec.get("custom") or []:
        import pandas as pd

        cls = load_custom(str(path))
        state = cls().fit(pd.DataFrame(work))
        add({"op": "custom", "fn": str(path), "state": state})
        types = {c: types.get(c, NUMERIC) for c in work}

    features = []
    for column in work:
        feature: dict[str, Any] = {"name": column, "type": types.get(column, NUMERIC)}
        if feature["type"] == CATEGORICAL:
            step = next(s for s in steps if s["op"] == "categorical" and s["column"] == column)
            feature["categories"] = step["categories"]
        features.append(feature)
    return {
        "version": FORMAT_VERSION,
        "target": _label(train, target, task, spec.get("target_map") or {}),
        "inputs": inputs,
        "steps": steps,
        "features": features,
        "dropped": [c for c in train.columns if c not in input_names and c not in (target, weight)],
    }


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
    column: str, series: pd.Series, spec: dict[str, Any], declared_cat: list[str] | None
) -> tuple[str | None, dict[str, Any] | None]:
    """(type, the step that converts it, if any); type None for an identifier to leave out."""
    import pandas as pd

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
    if len(series) > 50 and series.notna().all() and series.nunique() == len(series):
        return None, None  # an identifier: nothing to learn from
    return CATEGORICAL, None


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


def _numeric_steps(column: str, series: pd.Series, options: dict[str, Any]) -> list[dict[str, Any]]:
    import numpy as np

    known = {"winsorize", "clip", "log1p", "bins"}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(
            f"features.transforms.{column}: unknown option(s) {sorted(unknown)}; "
            f"options: {', '.join(sorted(known))}"
        )
    values = series.astype("float64")
    steps: list[dict[str, Any]] = []
    if "winsorize" in options:
        lo_q, hi_q = (float(q) for q in options["winsorize"])
        lo, hi = values.quantile(lo_q), values.quantile(hi_q)
        steps.append({"op": "clip", "column": column, "lower": plain(lo), "upper": plain(hi)})
        values = values.clip(lo, hi)
    if "clip" in options:
        lo, hi = options["clip"]
        steps.append({"op": "clip", "column": column, "lower": lo, "upper": hi})
        values = values.clip(lo, hi)
    if options.get("log1p"):
        steps.append({"op": "log1p", "column": column})
        values = np.log1p(values.where(values > -1))
    if options.get("bins"):
        n = int(options["bins"])
        edges = np.unique(values.quantile(np.linspace(0, 1, n + 1)[1:-1]).to_numpy())
        steps.append({"op": "bin", "column": column, "edges": [plain(e) for e in edges]})
    return steps


def _impute_step(
    column: str, series: pd.Series, strategy: Any, kind: str, indicator: bool
) -> dict[str, Any]:
    text = str(strategy)
    if text == "median":
        if kind != NUMERIC:
            raise ConfigError(f"features.impute.{column}: median needs a numeric column")
        value: Any = plain(series.astype("float64").median())
    elif text == "most_frequent":
        counts = series.dropna().value_counts()
        value = plain(counts.index[0]) if len(counts) else None
    elif text.startswith("constant:"):
        value = text.partition(":")[2]
        if kind == NUMERIC:
            value = float(value)
    elif isinstance(strategy, int | float):
        value = float(strategy)
    else:
        raise ConfigError(
            f"features.impute.{column}: unknown strategy '{strategy}'",
            hint="Use median, most_frequent, constant:VALUE or a number.",
        )
    return {"op": "impute", "column": column, "value": value, "indicator": indicator}


def _category_step(
    column: str, series: pd.Series, spec: dict[str, Any], onehot: bool
) -> dict[str, Any]:
    from pipespec.bundle.transforms import _as_text

    counts = _as_text(series).dropna().value_counts()
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


def _label(train: pd.DataFrame, target: str, task: str, mapping: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    label: dict[str, Any] = {"name": target, "task": task}
    if mapping:
        label["map"] = {str(k): plain(v) for k, v in mapping.items()}
    series = train[target]
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
        encode_target(label, train[target])  # every training label maps to a class
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


def table_meta(transforms: dict[str, Any]) -> dict[str, Any]:
    """What a downstream stage needs to know about a featurized table."""
    label = transforms["target"]
    return {
        "target": label["name"],
        "task": label["task"],
        "classes": label.get("classes"),
        "categorical": [f["name"] for f in transforms["features"] if f["type"] == CATEGORICAL],
        "features": [f["name"] for f in transforms["features"]],
    }
