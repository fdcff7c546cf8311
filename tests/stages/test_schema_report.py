"""What a validation says: the report is plain, stable JSON whatever numpy gave the failing
values (NaN as null); the screen and the error message name column, check and count."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from rich.console import Console

from pipespec.stages.schema_engine import Failure, Validation, validate
from pipespec.stages.schema_report import describe, failure_message, failure_table, report


def _result() -> Validation:
    failures = [
        Failure("plan", "isin(['basic', 'plus'])", 2, np.array([3, 9]), [("gold", 2)]),
        Failure("spend", "ge(0)", 2, np.array([4, 9]), [(np.float64(-1.5), 1), (np.nan, 1)]),
        Failure("n", "lt(5)", 1, np.array([7]), [(np.int64(12), 1)]),
    ]
    rows = np.array([3, 4, 7, 9])
    result = Validation("failed", 40, failures, rows, pd.DataFrame(), reason="schema.policy=fail")
    result.settings = {"path": "schemas/t.yaml", "policy": "fail"}
    return result


def test_report_is_plain_json() -> None:
    doc = report(_result())
    text = json.dumps(doc, allow_nan=False, sort_keys=True)  # no numpy scalar, no NaN left
    assert json.loads(text) == doc
    assert (doc["failing_rows"], doc["failing_fraction"], doc["rows_passed_on"]) == (4, 0.1, 0)
    spend = doc["failures"][1]
    assert spend["examples"] == [{"value": -1.5, "count": 1}, {"value": None, "count": 1}]
    assert [type(e["value"]) for e in spend["examples"]] == [float, type(None)]
    assert doc["failures"][2]["examples"] == [{"value": 12, "count": 1}]
    assert (spend["rows"], spend["rows_truncated"]) == ([4, 9], False)


def test_messages_name_column_check_and_count() -> None:
    result = _result()
    assert (
        describe(result.failures[0])
        == "plan: isin(['basic', 'plus']) fails for 2 rows, e.g. 'gold'"
    )
    assert describe(result.failures[1]) == "spend: ge(0) fails for 2 rows, e.g. -1.5, null"
    message = failure_message(result, "schemas/t.yaml")
    assert message.startswith("validation failed (schema.policy=fail): 4 of 40 rows break ")
    assert "  n: lt(5) fails for 1 row, e.g. 12" in message.splitlines()
    console = Console(width=100, record=True)
    console.print(failure_table(result))
    screen = console.export_text()
    assert "validation: 4 of 40 rows fail (10.00%)" in screen
    assert "'gold'" in screen
    assert "-1.5, null" in screen
    missing = validate(pd.DataFrame({"x": [1, 2]}), None, target="y").failures[0]
    assert describe(missing) == "y: column missing from the data ('y')"
