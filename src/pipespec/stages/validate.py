"""The ``validate`` stage: the loaded table against a pandera YAML schema (``schema.path``)
and pipespec's basic checks, lazily, so that every failure is reported at once.

On screen a table (column, check, failing rows, a few values); in ``report`` the full account
as JSON (a DVC output). ``schema.policy`` decides what failures do:

- ``fail``: the stage fails with a message naming each column, check and count, so nothing
  downstream runs;
- ``quarantine``: failing rows go to the ``quarantine`` table and the run goes on with the
  others, converted to the declared dtypes, while failing rows / rows stays at or under
  ``schema.max_failure_fraction``.

``quarantine`` is always written (empty when nothing fails), with two extra columns: ``_row``,
the row's number in the loaded table, and ``_failures``, the checks it failed. Failures of the
whole table (a missing column, too few rows, a target with one class) cannot be set aside row
by row: they fail under either policy.

Without a schema file (``schema=none``) only the basic checks run: the target column is there
and not empty, and a classification target has at least two classes. (That a binary target
has exactly two is checked by featurize, after features.target_map has merged raw labels
such as Adult's '>50K.' and '>50K'.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.dataschema import DataSchema, RowBounds, load
from pipespec.stages.schema_engine import (
    CLASSIFICATION,
    FAILURES_COLUMN,
    POLICIES,
    ROW_COLUMN,
    Failure,
    Validation,
    class_checks,
    decide,
    failing_rows,
    merge,
    row_count_checks,
    validate,
)
from pipespec.stages.schema_report import failure_message, failure_table, report

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("schema", "dataset.target", "dataset.drop", "compute.backend")
INPUTS = ("data",)
OUTPUTS = {
    # without a schema file the table passes on as read: split takes load's file itself
    "data": ("data/{stage}/data.parquet", "out", {"passes": "data", "unless": "schema.path"}),
    "report": ("data/{stage}/report.json", "out"),
    "quarantine": ("data/{stage}/quarantine.parquet", "out"),
}
PATH_PARAMS = ("schema.path",)  # editing the schema file re-runs validation


def run(ctx: StageContext) -> None:
    """The checks part by part, on either backend (row numbers stay global); the checks of
    the whole table run on the totals. A check that compares rows with each other (pandera's
    ``unique``) sees one part at a time: locally the whole table is one part."""
    import numpy as np

    settings, schema = _settings(ctx)
    dataset = ctx.params["dataset"]
    target = str(dataset["target"])
    files = parquet.part_files(ctx.input("data"))
    columns, meta = parquet.table_columns(ctx.input("data"))
    starts = parquet.offsets(parquet.part_rows(files))
    options = {
        "schema": schema,
        "target": target,
        "coerce": settings["coerce"],
        "drop": tuple(dataset["drop"]),
        "weight": meta.weight,
        "classes": meta.task in CLASSIFICATION,
        "columns": columns,
    }
    # "data" is not among the outputs when it passes on as read (OUTPUTS above): the stages
    # that take it read the input itself
    outputs: dict[str, Path] = {
        n: ctx.outputs[n] for n in ("data", "quarantine") if n in ctx.outputs
    }
    with cluster.backend(ctx) as backend:
        out = parquet.Parts(outputs, single=not backend.dask)
        try:
            parts = backend.map(files, _validate_part, starts, options, out, meta,
                                what="validating")  # fmt: skip
        except BaseException:
            out.discard()
            raise
    failures: list[Failure] = []
    labels: dict[Any, int] = {}
    for found, _, _, counts in parts:
        failures = merge(failures, found)
        for label, n in counts.items():
            labels[label] = labels.get(label, 0) + n
    rows = sum(n for _, n, _, _ in parts)
    table = row_count_checks(rows, schema.rows if schema else RowBounds())
    if options["classes"] and not any(f.whole_table for f in failures):
        table += class_checks(target, sorted(labels.items(), key=lambda kv: -kv[1]))
    failures = table + failures
    result = Validation("failed", rows, failures, failing_rows(failures), quarantine=None)
    result.settings = settings
    decide(
        result,
        settings["policy"],
        settings["max_failure_fraction"],
        settled=all(passed is not None for _, _, passed, _ in parts),
    )
    if result.outcome == "failed" and "data" in outputs:
        out.abandon("data")  # a stale table must not look validated
    else:
        result.passed_rows = int(np.sum([p or 0 for _, _, p, _ in parts]))
    out.commit()
    _report(ctx, result, len(columns))


def _settings(ctx: StageContext) -> tuple[dict[str, Any], DataSchema | None]:
    spec = ctx.params["schema"]
    fraction = float(spec["max_failure_fraction"])
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"schema.max_failure_fraction must be in [0, 1], got {fraction}")
    path = spec.get("path")
    schema = load(_resolve(path, ctx.root), path) if path else None
    settings = {
        "name": spec.get("name"),
        "path": path,
        "policy": str(spec["policy"]),
        "max_failure_fraction": fraction,
        "coerce": bool(spec["coerce"]),
    }
    if settings["policy"] not in POLICIES:
        raise ConfigError(
            f"schema.policy must be one of {', '.join(POLICIES)}, got '{settings['policy']}'"
        )
    return settings, schema


def _report(ctx: StageContext, result: Validation, width: int) -> None:
    """Write the report; show the failures; fail the stage or say what went on."""
    settings = result.settings
    write_json(ctx.output("report"), report(result))
    if result.failures:
        console().print(failure_table(result))
    where = settings["path"] or "the basic checks (schema=none)"
    if result.outcome == "failed":
        raise DataError(
            failure_message(result, where),
            hint=f"Full report: {_rel(ctx.output('report'), ctx.root)}; failing rows: "
            f"{_rel(ctx.output('quarantine'), ctx.root)}. Fix the data or the schema"
            + (", or set schema.policy=quarantine to set failing rows aside."
               if settings["policy"] == "fail" else "."),
        )  # fmt: skip
    if result.outcome == "quarantined":
        console().print(
            f"  [yellow]quarantined[/] {len(result.bad_rows):,} of {result.rows:,} rows "
            f"({result.fraction:.2%}; schema.max_failure_fraction="
            f"{settings['max_failure_fraction']:g}) -> {_rel(ctx.output('quarantine'), ctx.root)}"
        )
    passed = result.passed_rows if result.data is None else len(result.data)
    table = ctx.outputs.get("data")
    source = _rel(ctx.input("data"), ctx.root)
    onward = f"-> {_rel(table, ctx.root)}" if table else f"(passed on as {source})"
    console().print(f"  {passed:,} rows x {width} columns fit {where} {onward}")


def _validate_part(
    index: int, path: Path, starts: list[int], options: dict[str, Any], out: Any, meta: Any
) -> tuple[list[Failure], int, int | None, dict[Any, int]]:
    """Validate one part: (failures with global row numbers, rows, rows passed on or None,
    label counts). Writes its part of the data and of the quarantine. Without a schema only
    the basic checks run, on the target column alone; a part that passes is passed on as
    the very same file (a link where the filesystem allows)."""
    target, schema = options["target"], options["schema"]
    if schema is None:
        return _basic_part(index, path, starts, options, out, meta)
    frame = parquet.read_part(path)
    start = starts[index]
    result = validate(
        frame,
        schema,
        target=target,
        policy="quarantine",
        max_failure_fraction=1.0,
        coerce=options["coerce"],
        drop=options["drop"],
        weight=options["weight"],
        whole=False,
    )
    for failure in result.failures:
        failure.rows = failure.rows + start
    quarantine = result.quarantine
    quarantine[ROW_COLUMN] = quarantine[ROW_COLUMN] + start
    out.write("quarantine", index, quarantine, meta)
    if result.data is not None:
        out.write("data", index, result.data, meta)
    counts: dict[Any, int] = {}
    if options["classes"] and target in frame.columns:
        values = frame[target].dropna().value_counts(sort=False)
        counts = {k: int(v) for k, v in values.items()}
    passed = None if result.data is None else len(result.data)
    return result.failures, len(frame), passed, counts


def _basic_part(
    index: int, path: Path, starts: list[int], options: dict[str, Any], out: Any, meta: Any
) -> tuple[list[Failure], int, int | None, dict[Any, int]]:
    """``_validate_part`` without a schema: the basic checks on the target column alone, in
    Arrow (no pandas). Their failures are checks of the whole table, so a part either
    passes on as the very same file (a link where the filesystem allows) or the stage
    fails; the quarantine is empty."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    target = options["target"]
    footer = pq.ParquetFile(path)
    rows = footer.metadata.num_rows
    none = np.array([], dtype=np.int64)
    failures: list[Failure] = []
    counts: dict[Any, int] = {}
    if target not in options["columns"]:
        failures.append(Failure(target, "column_in_dataframe", 1, none, [(target, 1)]))
    else:
        labels = footer.read(columns=[target])[target]
        if rows and labels.null_count == rows:
            failures.append(Failure(target, "not_all_null", 1, none, [(None, rows)]))
        elif options["classes"]:
            found = pc.value_counts(labels.drop_null()).to_pylist()
            counts = {item["values"]: int(item["counts"]) for item in found}
    schema = footer.schema_arrow
    empty = schema.empty_table()
    quarantine = empty.append_column(ROW_COLUMN, pa.array([], pa.int64())).append_column(
        FAILURES_COLUMN, pa.array([], pa.string())
    )
    out.write("quarantine", index, quarantine, meta)
    if not failures and "data" in out.targets:
        out.link("data", index, path)
    return failures, rows, None if failures else rows, counts


def _resolve(value: str, root: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
