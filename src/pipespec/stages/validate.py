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

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.atomic import write_json
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages import cluster, parquet
from pipespec.stages.context import StageContext
from pipespec.stages.dataschema import DataSchema, RowBounds, load
from pipespec.stages.rows import SPLIT_COLUMN

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("schema", "dataset.target", "dataset.drop", "compute.backend")
INPUTS = ("data",)
OUTPUTS = {
    "data": ("data/{stage}/data.parquet", "out"),
    "report": ("data/{stage}/report.json", "out"),
    "quarantine": ("data/{stage}/quarantine.parquet", "out"),
}
PATH_PARAMS = ("schema.path",)  # editing the schema file re-runs validation

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa
    from rich.table import Table

ROW_COLUMN = "_row"
FAILURES_COLUMN = "_failures"
TABLE = "(table)"  # the column shown for checks of the whole table
POLICIES = ("fail", "quarantine")
REPORT_ROWS = 10_000  # failing row numbers listed per check in the report (all are counted)
REPORT_EXAMPLES = 20  # distinct failing values per check in the report
SCREEN_EXAMPLES = 4  # ... and on screen
SCREEN_CHECKS = 30  # checks listed on screen (the report has all)
MESSAGE_CHECKS = 8  # checks named in the error message
CLASSIFICATION = ("binary", "multiclass")
MAX_PASSES = 3  # validation passes: the first on all rows, later ones on the rows left
DTYPE_CHECKS = ("dtype(", "coerce_dtype(")
# What a failed check that pandera names after the whole table means, for messages.
DESCRIPTIONS = {
    "column_in_dataframe": "column missing from the data",
    "column_in_schema": "column not declared in the schema (strict: true)",
}


@dataclass
class Failure:
    """One failed check: where, what, how many rows, and some of the values at fault."""

    column: str
    check: str
    count: int  # failing rows; for a check of the whole table, its failure cases
    rows: np.ndarray  # row numbers in the loaded table; empty when the whole table fails
    examples: list[tuple[Any, int]]  # distinct failing values and counts, most frequent first

    @property
    def whole_table(self) -> bool:
        return len(self.rows) == 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.column, self.check)

    def describe(self) -> str:
        """``TotalCharges: dtype('float64') fails for 11 rows, e.g. ' '``."""
        shown = ", ".join(show(v) for v, _ in self.examples[:3])
        if self.whole_table:
            what = DESCRIPTIONS.get(self.check, f"{self.check} fails")
            return f"{self.column}: {what}" + (f" ({shown})" if shown else "")
        rows = f"{self.count:,} row{'' if self.count == 1 else 's'}"
        return f"{self.column}: {self.check} fails for {rows}" + (
            f", e.g. {shown}" if shown else ""
        )


@dataclass
class Validation:
    """The outcome of checking one table: what failed, what goes on, what is set aside."""

    outcome: str  # passed | quarantined | failed
    rows: int
    failures: list[Failure]
    bad_rows: np.ndarray
    quarantine: pd.DataFrame
    data: pd.DataFrame | None = None  # rows that go on (None when failed)
    reason: str | None = None  # why it failed
    settings: dict[str, Any] = field(default_factory=dict)
    passed_rows: int | None = None  # rows that go on, when ``data`` was written part by part

    @property
    def fraction(self) -> float:
        return len(self.bad_rows) / self.rows if self.rows else 0.0

    def report(self) -> dict[str, Any]:
        """The full account, as written to the ``report`` output (stable JSON)."""
        return {
            "schema": self.settings,
            "outcome": self.outcome,
            "reason": self.reason,
            "rows": self.rows,
            "failing_rows": len(self.bad_rows),
            "failing_fraction": self.fraction,
            "rows_passed_on": (
                self.passed_rows
                if self.passed_rows is not None
                else (0 if self.data is None else len(self.data))
            ),
            "failures": [
                {
                    "column": f.column,
                    "check": f.check,
                    "count": f.count,
                    "whole_table": f.whole_table,
                    "examples": [{"value": json_value(v), "count": n} for v, n in f.examples],
                    "rows": [int(r) for r in f.rows[:REPORT_ROWS]],
                    "rows_truncated": len(f.rows) > REPORT_ROWS,
                }
                for f in self.failures
            ],
        }


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
    outputs = {"data": ctx.output("data"), "quarantine": ctx.output("quarantine")}
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
        failures = _merge(failures, found)
        for label, n in counts.items():
            labels[label] = labels.get(label, 0) + n
    rows = sum(n for _, n, _, _ in parts)
    table = row_count_checks(rows, schema.rows if schema else RowBounds())
    if options["classes"] and not any(f.whole_table for f in failures):
        table += class_checks(target, sorted(labels.items(), key=lambda kv: -kv[1]))
    failures = table + failures
    result = Validation("failed", rows, failures, _bad_rows(failures), quarantine=None)
    result.settings = settings
    decide(
        result,
        settings["policy"],
        settings["max_failure_fraction"],
        settled=all(passed is not None for _, _, passed, _ in parts),
    )
    if result.outcome == "failed":
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
    write_json(ctx.output("report"), result.report())
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
    console().print(
        f"  {passed:,} rows x {width} columns fit {where} -> {_rel(ctx.output('data'), ctx.root)}"
    )


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
    if not failures:
        out.link("data", index, path)
    return failures, rows, None if failures else rows, counts


def validate(
    frame: pd.DataFrame,
    schema: DataSchema | None,
    *,
    target: str,
    task: str | None = None,
    policy: str = "fail",
    max_failure_fraction: float = 0.0,
    coerce: bool = False,
    drop: tuple[str, ...] = (),
    weight: str | None = None,
    whole: bool = True,
) -> Validation:
    """Check ``frame`` lazily against ``schema`` and the basic checks; apply ``policy``.

    Columns named in ``drop`` (the dataset's dropped columns) are not checked; the load
    stage's ``_split`` column and a ``weight`` column the schema does not declare pass
    through unchecked. ``whole=False`` leaves out the checks of the whole table (row count,
    two classes): ``frame`` is one partition of it, and they are made on the totals.
    """
    if policy not in POLICIES:
        raise ConfigError(f"schema.policy must be one of {', '.join(POLICIES)}, got '{policy}'")
    frame = frame.reset_index(drop=True)
    declared = set(schema.columns) if schema is not None else set()
    passthrough = [
        c for c in frame.columns if c == SPLIT_COLUMN or (c == weight and c not in declared)
    ]
    checked = frame.drop(columns=passthrough) if passthrough else frame
    failures = basic_checks(
        checked, target, task if whole else None, schema.rows if schema and whole else RowBounds()
    )
    if not whole:
        failures = [f for f in failures if f.check != "not_empty"]
    validated: pd.DataFrame | None = checked
    if schema is not None:
        failures, validated = _passes(_prepared(schema, drop, coerce), checked, failures, schema)
    bad = _bad_rows(failures)
    result = Validation("failed", len(frame), failures, bad, quarantine_table(frame, failures))
    decide(result, policy, max_failure_fraction, settled=validated is not None)
    if result.outcome != "failed" and validated is not None:
        result.data = _rejoin(validated, frame, passthrough).reset_index(drop=True)
    return result


def decide(result: Validation, policy: str, max_failure_fraction: float, *, settled: bool) -> None:
    """Set the outcome: passed, quarantined, or failed with the reason. ``settled``: the
    rows left after setting failing ones aside passed validation."""
    if not result.failures:
        result.outcome = "passed"
    elif policy == "fail":
        result.reason = "schema.policy=fail"
    elif any(f.whole_table for f in result.failures):
        result.reason = "checks of the whole table failed, which no quarantine can fix"
    elif result.fraction > max_failure_fraction:
        result.reason = (
            f"{result.fraction:.2%} of rows fail, more than "
            f"schema.max_failure_fraction={max_failure_fraction:g} allows"
        )
    elif not settled:
        result.reason = f"the rows left still fail after {MAX_PASSES} passes"
    else:
        result.outcome = "quarantined"


def _passes(
    pa_schema: pa.DataFrameSchema,
    checked: pd.DataFrame,
    failures: list[Failure],
    schema: DataSchema,
) -> tuple[list[Failure], pd.DataFrame | None]:
    """Validate until no new row fails: each later pass checks only the rows that have not
    failed yet, converted to the declared dtypes, so that the value checks of a column with
    unconvertible values (Telco's blank TotalCharges) run on the others instead of erring on
    text. Returns every failure and the validated rows (None if the last pass failed)."""
    import numpy as np

    rows = checked
    for _ in range(MAX_PASSES):
        found, validated = _run(pa_schema, rows, schema.source)
        found = _without_consequences(found)
        before = len(_bad_rows(failures))
        failures = _merge(failures, found)
        if not found:
            return failures, validated
        bad = _bad_rows(failures)
        if len(bad) == before:  # nothing new to set aside: only checks of the whole table
            return failures, None
        keep = np.ones(len(checked), dtype=bool)
        keep[bad] = False
        rows = checked[keep]
        if not pa_schema.coerce:
            pa_schema = copy.deepcopy(pa_schema)
            pa_schema.coerce = True
    return failures, None


def _without_consequences(found: list[Failure]) -> list[Failure]:
    """Leave out failures that only follow from a column's values not being of its dtype
    (they are checked again in the next pass, on converted values)."""
    unconverted = {
        f.column for f in found if f.check.startswith(DTYPE_CHECKS) and not f.whole_table
    }
    coerced = {f.column for f in found if f.check.startswith("coerce_dtype(")}
    kept = []
    for f in found:
        if f.column in unconverted and not f.check.startswith(DTYPE_CHECKS):
            continue  # e.g. isin([0, 1]) on text '0', '1': checked once converted
        if f.column in coerced and f.check.startswith("dtype("):
            continue  # the same rows as its coerce_dtype failure
        kept.append(f)
    return kept


def basic_checks(
    frame: pd.DataFrame, target: str, task: str | None, rows: RowBounds
) -> list[Failure]:
    """Checks that hold for every table, with or without a schema file."""
    import numpy as np

    none = np.array([], dtype=np.int64)
    n = len(frame)
    failures = row_count_checks(n, rows)
    if target not in frame.columns:
        failures.append(Failure(target, "column_in_dataframe", 1, none, [(target, 1)]))
        return failures
    labels = frame[target]
    if n and labels.isna().all():
        failures.append(Failure(target, "not_all_null", 1, none, [(None, n)]))
        return failures
    if task in CLASSIFICATION:
        classes = labels.dropna().value_counts(sort=False)
        failures += class_checks(target, [(k, int(c)) for k, c in classes.items()])
    return failures


def row_count_checks(n: int, rows: RowBounds) -> list[Failure]:
    """The table is not empty and its row count is within the schema's bounds."""
    none = _empty()
    failures: list[Failure] = []
    if n == 0:
        failures.append(Failure(TABLE, "not_empty", 1, none, [(0, 1)]))
    if rows.min is not None and n < rows.min:
        failures.append(Failure(TABLE, f"min_rows({rows.min})", 1, none, [(n, 1)]))
    if rows.max is not None and n > rows.max:
        failures.append(Failure(TABLE, f"max_rows({rows.max})", 1, none, [(n, 1)]))
    return failures


def class_checks(target: str, counts: list[tuple[Any, int]]) -> list[Failure]:
    """A classification target has at least two classes (``counts``: label, rows)."""
    if len(counts) < 2:
        return [Failure(target, "at_least_two_classes", 1, _empty(), counts)]
    return []


def quarantine_table(frame: pd.DataFrame, failures: list[Failure]) -> pd.DataFrame:
    """The failing rows as loaded, plus ``_row`` and ``_failures`` (always the same columns)."""
    import numpy as np
    import pandas as pd

    per_row = [f for f in failures if not f.whole_table]
    rows = np.concatenate([f.rows for f in per_row]) if per_row else _empty()
    labels = np.concatenate(
        [np.full(len(f.rows), f"{f.column}: {f.check}", dtype=object) for f in per_row]
        or [np.array([], dtype=object)]
    )
    order = np.argsort(rows, kind="stable")  # a row's checks keep the report's order
    rows, labels = rows[order], labels[order]
    unique, starts = np.unique(rows, return_index=True)
    if len(unique) < len(rows):  # some rows fail several checks
        labels = np.array(["; ".join(part) for part in np.split(labels, starts[1:])], dtype=object)
    reasons = pd.Series(labels, index=pd.Index(unique, dtype=np.int64), dtype=object)
    out = frame.iloc[reasons.index.to_numpy()].reset_index(drop=True)
    extra = pd.DataFrame(
        {
            ROW_COLUMN: reasons.index.to_numpy(dtype=np.int64),
            FAILURES_COLUMN: pd.array(reasons.to_numpy(), dtype="str"),
        }
    )
    return pd.concat([out, extra], axis=1)


def failure_table(result: Validation) -> Table:
    """The on-screen table: column, check, failing rows, a few of the values at fault."""
    from rich.table import Table
    from rich.text import Text

    title = (
        f"validation: {len(result.bad_rows):,} of {result.rows:,} rows fail ({result.fraction:.2%})"
    )
    if any(f.whole_table for f in result.failures):
        title += "; checks of the whole table fail"
    table = Table(title=title, title_justify="left")
    table.add_column("column")
    table.add_column("check")
    table.add_column("failing", justify="right")
    table.add_column("examples")
    for f in result.failures[:SCREEN_CHECKS]:
        table.add_row(
            Text(f.column),
            Text(_clip(f.check, 50)),
            Text("table" if f.whole_table else f"{f.count:,}"),
            Text(", ".join(show(v) for v, _ in f.examples[:SCREEN_EXAMPLES])),
        )
    hidden = len(result.failures) - SCREEN_CHECKS
    if hidden > 0:
        table.add_row(Text(f"... {hidden} more in the report"), "", "", "")
    return table


def failure_message(result: Validation, where: str) -> str:
    """The error message: every failed check (up to a few), named with its count."""
    head = (
        f"validation failed ({result.reason}): {len(result.bad_rows):,} of {result.rows:,} "
        f"rows break {where}"
    )
    if any(f.whole_table for f in result.failures):
        head += ", and checks of the whole table fail"
    lines = [f"  {f.describe()}" for f in result.failures[:MESSAGE_CHECKS]]
    more = len(result.failures) - MESSAGE_CHECKS
    if more > 0:
        lines.append(f"  ... and {more} more check(s) in the report")
    return head + ":\n" + "\n".join(lines)


def show(value: Any) -> str:
    """A failing value for the screen: text quoted (so that ' ' shows), missing as null."""
    value = json_value(value)
    if value is None:
        return "null"
    return _clip(repr(value) if isinstance(value, str) else str(value), 40)


def json_value(value: Any) -> Any:
    """A failure case as a JSON value: numpy scalars unwrapped, NaN as null."""
    import math

    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str):
        try:
            value = item()
        except (ValueError, TypeError):
            value = str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else str(value)
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _prepared(schema: DataSchema, drop: tuple[str, ...], coerce: bool) -> pa.DataFrameSchema:
    pa_schema = schema.pandera
    dropped = [c for c in drop if c in pa_schema.columns]
    if dropped:  # the dataset drops them before this stage: nothing to check
        pa_schema = pa_schema.remove_columns(dropped)
    if coerce:
        pa_schema = copy.deepcopy(pa_schema)
        pa_schema.coerce = True
    return pa_schema


def _run(
    pa_schema: pa.DataFrameSchema, frame: pd.DataFrame, source: str
) -> tuple[list[Failure], pd.DataFrame | None]:
    """Lazy validation: (failures, None) or ([], the validated, possibly coerced, frame)."""
    from pandera.errors import SchemaError, SchemaErrors

    try:
        return [], pa_schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return _collect(exc.failure_cases), None
    except SchemaError as exc:  # raised eagerly for some errors even when lazy
        column = str(getattr(exc.schema, "name", None) or TABLE)
        check = str(exc.check) if exc.check is not None else type(exc).__name__
        return [Failure(column, check, 1, _empty(), [(str(exc).splitlines()[0], 1)])], None
    except Exception as exc:  # a check that cannot run on this data (e.g. a regex on numbers)
        raise ConfigError(
            f"schema file {source} (schema.path): pandera cannot check the data: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _collect(cases: pd.DataFrame) -> list[Failure]:
    """pandera's failure_cases table, grouped by (column, check)."""
    import pandas as pd

    cases = cases.reset_index(drop=True)
    column = cases["column"].astype(object)
    by_name = cases["check"].isin(list(DESCRIPTIONS)) & column.isna()
    column = column.where(~by_name, cases["failure_case"].astype(object))
    column = column.where(column.notna(), TABLE).map(str)
    cases = cases.assign(_column=column.to_numpy(), _check=cases["check"].astype(object).map(str))
    failures = []
    for (col, check), group in cases.groupby(["_column", "_check"], sort=False, dropna=False):
        index = pd.to_numeric(group["index"].astype(object), errors="coerce").dropna()
        rows = index.astype("int64").unique()
        rows.sort()
        count = len(rows) if len(rows) else len(group)
        failures.append(
            Failure(str(col), str(check), count, rows, _examples(group["failure_case"]))
        )
    return failures


def _examples(values: pd.Series) -> list[tuple[Any, int]]:
    counts = values.astype(object).value_counts(sort=False, dropna=False)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep first seen
    return [(value, int(n)) for value, n in ranked[:REPORT_EXAMPLES]]


def _merge(failures: list[Failure], found: list[Failure]) -> list[Failure]:
    """``failures`` and ``found``, one entry per (column, check), rows united."""
    import numpy as np

    out = {f.key: f for f in failures}
    for f in found:
        old = out.get(f.key)
        if old is None:
            out[f.key] = f
        elif not f.whole_table and not old.whole_table:
            rows = np.union1d(old.rows, f.rows)
            counts: dict[Any, int] = {}
            for value, n in [*old.examples, *f.examples]:
                counts[value] = counts.get(value, 0) + n
            examples = sorted(counts.items(), key=lambda kv: -kv[1])[:REPORT_EXAMPLES]
            out[f.key] = Failure(f.column, f.check, len(rows), rows, examples)
    return list(out.values())


def _rejoin(
    validated: pd.DataFrame, original: pd.DataFrame, passthrough: list[str]
) -> pd.DataFrame:
    """``validated`` with the unchecked columns put back in their places."""
    if not passthrough:
        return validated
    out = validated.copy()
    for column in passthrough:
        out[column] = original.loc[validated.index, column]
    order = [c for c in original.columns if c in out.columns]
    return out[order + [c for c in out.columns if c not in order]]


def _bad_rows(failures: list[Failure]) -> np.ndarray:
    import numpy as np

    rows = [f.rows for f in failures if not f.whole_table]
    return np.unique(np.concatenate(rows)) if rows else _empty()


def _empty() -> np.ndarray:
    import numpy as np

    return np.array([], dtype=np.int64)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _resolve(value: str, root: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
