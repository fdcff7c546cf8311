"""Running a data schema over a table: pandera lazily, in passes, every failure collected.

The schema document (``pipespec.stages.dataschema``) says what a table must be; this module
checks a table against it, as pandera keeps its ``backends/`` apart from its ``api/``. It
adds pipespec's basic checks (the target is there and not empty, a classification target
has two classes, the row count is within bounds), runs pandera in passes so that the value
checks of a column with unconvertible values run on the values that do convert, collects
the failures per (column, check) with their row numbers and a few values, and decides the
outcome under a policy: ``fail``, or ``quarantine`` the failing rows. What a ``Validation``
says on screen, in the report and in an error message is ``pipespec.stages.schema_report``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipespec.core.errors import ConfigError
from pipespec.stages.dataschema import DataSchema, RowBounds
from pipespec.stages.rows import SPLIT_COLUMN

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa

ROW_COLUMN = "_row"
FAILURES_COLUMN = "_failures"
TABLE = "(table)"  # the column shown for checks of the whole table
POLICIES = ("fail", "quarantine")
REPORT_EXAMPLES = 20  # distinct failing values per check in the report
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
    bad = failing_rows(failures)
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
        before = len(failing_rows(failures))
        failures = merge(failures, found)
        if not found:
            return failures, validated
        bad = failing_rows(failures)
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


def merge(failures: list[Failure], found: list[Failure]) -> list[Failure]:
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


def failing_rows(failures: list[Failure]) -> np.ndarray:
    """The row numbers that fail some check, each once, in order."""
    import numpy as np

    rows = [f.rows for f in failures if not f.whole_table]
    return np.unique(np.concatenate(rows)) if rows else _empty()


def _empty() -> np.ndarray:
    import numpy as np

    return np.array([], dtype=np.int64)
