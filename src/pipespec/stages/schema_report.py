"""What a validation says: the full account as JSON (the validate stage's ``report``
output), the table on screen, and the error message. One renderer of a
``pipespec.stages.schema_engine.Validation`` for all three, so the values at fault read the
same everywhere: text quoted (so that ' ' shows), missing as null, numbers as JSON numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.core.documents import plain
from pipespec.stages.schema_engine import DESCRIPTIONS, Failure, Validation

if TYPE_CHECKING:
    from rich.table import Table

REPORT_ROWS = 10_000  # failing row numbers listed per check in the report (all are counted)
SCREEN_EXAMPLES = 4  # distinct failing values per check on screen (the report has more)
SCREEN_CHECKS = 30  # checks listed on screen (the report has all)
MESSAGE_CHECKS = 8  # checks named in the error message


def report(result: Validation) -> dict[str, Any]:
    """The full account, as written to the ``report`` output (stable JSON)."""
    return {
        "schema": result.settings,
        "outcome": result.outcome,
        "reason": result.reason,
        "rows": result.rows,
        "failing_rows": len(result.bad_rows),
        "failing_fraction": result.fraction,
        "rows_passed_on": (
            result.passed_rows
            if result.passed_rows is not None
            else (0 if result.data is None else len(result.data))
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
            for f in result.failures
        ],
    }


def describe(failure: Failure) -> str:
    """``TotalCharges: dtype('float64') fails for 11 rows, e.g. ' '``."""
    shown = ", ".join(show(v) for v, _ in failure.examples[:3])
    if failure.whole_table:
        what = DESCRIPTIONS.get(failure.check, f"{failure.check} fails")
        return f"{failure.column}: {what}" + (f" ({shown})" if shown else "")
    rows = f"{failure.count:,} row{'' if failure.count == 1 else 's'}"
    return f"{failure.column}: {failure.check} fails for {rows}" + (
        f", e.g. {shown}" if shown else ""
    )


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
    lines = [f"  {describe(f)}" for f in result.failures[:MESSAGE_CHECKS]]
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

    try:
        value = plain(value)
    except (ValueError, TypeError):  # an array of several values, say
        value = str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return float(value) if math.isfinite(value) else str(value)
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
