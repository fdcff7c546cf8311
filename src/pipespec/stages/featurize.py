"""The ``featurize`` stage: fit feature transforms on the training split only
(``pipespec.stages.fitter``), save them as human-readable JSON, and apply exactly those to
every split with the one interpreter of ``pipespec.bundle.transforms`` (evaluation, batch
prediction and serving run it too).
"""

from __future__ import annotations

from typing import Any

from pipespec.bundle.transforms import load_custom
from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.core.documents import CustomStep, TableMeta, Transforms, to_json
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.fit_data import Columns, InMemory, Partitioned
from pipespec.stages.fitter import CATEGORICAL, fit_columns

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("features", "dataset.target", "dataset.task", "dataset.weight", "compute.backend")
INPUTS = ("train",)
ANY_INPUTS = True  # valid: transformed too (the test rows are scored raw, through the bundle)
OUTPUTS = {
    "transforms": ("models/{stage}/transforms.json", "out"),
    "train": ("data/{stage}/train.parquet", "out"),
    "valid": ("data/{stage}/valid.parquet", "out"),
}


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
        transforms = fit_columns(
            data, ctx.params["features"], target=target, task=dataset["task"], weight=weight
        )
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
