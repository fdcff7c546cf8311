"""The ``featurize`` stage: fit feature handling on the training split only, save it as
human-readable JSON, and apply exactly that to every split.

Text columns become integer codes for LightGBM's native categorical support, with a stable
category-to-code mapping (most frequent first, ties by name); categories unseen in training
become missing. Class labels become 0..K-1 in sorted order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.bundle.transforms import apply, plain
from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.core.errors import DataError
from pipespec.stages.context import StageContext
from pipespec.stages.tabular import read_table, write_table

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1


def run(ctx: StageContext) -> None:
    train, _ = read_table(ctx.input("train"))
    spec = ctx.params["features"]
    target = ctx.params["dataset"]["target"]
    task = ctx.params["dataset"]["task"]
    weight = ctx.params["dataset"]["weight"]
    transforms = fit(train, spec, target=target, task=task, weight=weight)
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
    n_cat = sum(1 for f in transforms["features"] if f["type"] == "categorical")
    console().print(
        f"  {len(transforms['features'])} features ({n_cat} categorical) fitted on "
        f"{len(train):,} training rows"
    )


def fit(
    train: pd.DataFrame, spec: Any, *, target: str, task: str, weight: str | None = None
) -> dict[str, Any]:
    """The transforms document for ``train`` (plain JSON-able data)."""
    import pandas as pd

    drop = list(spec["drop"])
    unknown = [c for c in drop if c not in train.columns]
    if unknown:
        raise DataError(f"features.drop names column(s) not in the data: {', '.join(unknown)}")
    declared = spec.get("categorical")
    if declared is not None:
        unknown = [c for c in declared if c not in train.columns]
        if unknown:
            raise DataError(
                f"features.categorical names column(s) not in the data: {', '.join(unknown)}"
            )
    features: list[dict[str, Any]] = []
    for column in train.columns:
        if column in (target, weight) or column in drop:
            continue
        series = train[column]
        is_text = not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))
        if declared is None and is_text and _is_identifier(series):
            drop.append(str(column))
            console().print(f"  '{column}' looks like an identifier (all values unique): dropped")
            continue
        if (declared is None and is_text) or (declared is not None and column in declared):
            counts = series.dropna().astype("str").value_counts()
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            cats = [str(k) for k, _ in ordered[: int(spec["max_categories"])]]
            features.append({"name": str(column), "type": "categorical", "categories": cats})
        elif is_text:
            raise DataError(
                f"column '{column}' holds text but is not in features.categorical",
                hint="Add it to features.categorical or to features.drop.",
            )
        else:
            features.append({"name": str(column), "type": "numeric"})
    label: dict[str, Any] = {"name": target, "task": task}
    if task in ("binary", "multiclass"):
        values = train[target].dropna().unique().tolist()
        classes = sorted(values, key=lambda v: (str(type(v)), v))
        if task == "binary" and len(classes) != 2:
            raise DataError(
                f"dataset.task is binary but target '{target}' has {len(classes)} classes "
                f"in the training split: {classes[:10]}",
                hint="Use dataset.task=multiclass, or map the target to two values.",
            )
        label["classes"] = [plain(v) for v in classes]
    elif not pd.api.types.is_numeric_dtype(train[target]):
        raise DataError(
            f"dataset.task is regression but target '{target}' is not numeric "
            f"(dtype {train[target].dtype})"
        )
    return {"version": FORMAT_VERSION, "target": label, "features": features, "dropped": drop}


def table_meta(transforms: dict[str, Any]) -> dict[str, Any]:
    """What a downstream stage needs to know about a featurized table."""
    label = transforms["target"]
    return {
        "target": label["name"],
        "task": label["task"],
        "classes": label.get("classes"),
        "categorical": [f["name"] for f in transforms["features"] if f["type"] == "categorical"],
        "features": [f["name"] for f in transforms["features"]],
    }


def _is_identifier(series: pd.Series) -> bool:
    """A text column whose every value is distinct carries no pattern to learn."""
    return len(series) > 50 and series.notna().all() and series.nunique() == len(series)
