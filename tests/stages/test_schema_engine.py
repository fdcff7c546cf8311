"""The schema engine: a table against a pandera YAML schema (every kind of check, all
failures at once, in passes over the rows left), both policies, the basic checks, the
columns that pass through unchecked, and real data (the embedded set, Telco)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO, shared
from pipespec.stages.dataschema import from_dict, load
from pipespec.stages.schema_engine import validate

TELCO = ("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")

SCHEMA = """
columns:
  id: {dtype: str, unique: true, str_matches: '^C\\d{3}$'}
  age: {dtype: float64, nullable: true, in_range: {min_value: 18, max_value: 99}}
  plan: {dtype: str, isin: [basic, plus]}
  spend: {dtype: float64, greater_than_or_equal_to: 0}
  y: {dtype: int64, isin: [0, 1]}
"""


def _schema(text: str = SCHEMA, name: str = "schemas/test.yaml"):
    return from_dict(yaml.safe_load(text), name)


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": [f"C{i:03d}" for i in range(n)],
            "age": rng.integers(18, 90, n).astype(float),
            "plan": rng.choice(["basic", "plus"], n),
            "spend": rng.uniform(0, 100, n).round(2),
            "y": np.arange(n) % 2,
        }
    )


def _broken() -> pd.DataFrame:
    frame = _frame()
    frame.loc[3, "id"] = "C001"  # duplicate of row 1
    frame.loc[5, "id"] = "X005"  # pattern
    frame.loc[7, "age"] = 7.0  # range
    frame.loc[9, "plan"] = "gold"  # category
    frame.loc[11, "spend"] = -1.0  # range
    return frame


def test_a_clean_frame_passes_unchanged() -> None:
    frame = _frame()
    result = validate(frame, _schema(), target="y", task="binary")
    assert result.outcome == "passed"
    assert not result.failures
    pd.testing.assert_frame_equal(result.data, frame)
    assert result.quarantine.empty
    assert list(result.quarantine.columns) == [*frame.columns, "_row", "_failures"]


def test_every_failure_is_reported_at_once() -> None:
    result = validate(_broken(), _schema(), target="y", task="binary")
    assert result.outcome == "failed"
    found = {(f.column, f.check): sorted(f.rows.tolist()) for f in result.failures}
    assert found == {
        ("id", "field_uniqueness"): [1, 3],
        ("id", "str_matches('^C\\d{3}$')"): [5],
        ("age", "in_range(18, 99)"): [7],
        ("plan", "isin(['basic', 'plus'])"): [9],
        ("spend", "greater_than_or_equal_to(0)"): [11],
    }
    assert result.bad_rows.tolist() == [1, 3, 5, 7, 9, 11]
    assert result.data is None
    assert result.quarantine["_row"].tolist() == [1, 3, 5, 7, 9, 11]
    assert result.quarantine.loc[2, "_failures"] == "id: str_matches('^C\\d{3}$')"
    plan = next(f for f in result.failures if f.column == "plan")
    assert plan.examples == [("gold", 1)]


def test_quarantine_sets_failing_rows_aside_within_the_threshold() -> None:
    frame = _broken()
    ok = validate(frame, _schema(), target="y", policy="quarantine", max_failure_fraction=6 / 40)
    assert ok.outcome == "quarantined"
    assert len(ok.data) == 34
    assert not set(ok.data["id"]) & {"X005"}
    pd.testing.assert_frame_equal(
        ok.quarantine.drop(columns=["_row", "_failures"]),
        frame.iloc[[1, 3, 5, 7, 9, 11]].reset_index(drop=True),
    )
    over = validate(frame, _schema(), target="y", policy="quarantine", max_failure_fraction=0.1)
    assert over.outcome == "failed"
    assert "15.00% of rows fail, more than schema.max_failure_fraction=0.1" in over.reason


def test_values_that_do_not_convert_are_quarantined_and_the_rest_converted() -> None:
    frame = _frame()
    frame["spend"] = frame["spend"].astype(str)
    frame.loc[[2, 4], "spend"] = " "  # Telco's blank TotalCharges
    frame.loc[6, "spend"] = "-5"  # converts, then breaks the range
    strict = validate(frame, _schema(), target="y")
    assert [(f.column, f.check, f.count) for f in strict.failures] == [
        ("spend", "dtype('float64')", 2),
        ("spend", "greater_than_or_equal_to(0)", 1),  # found on the converted values
    ]
    kept = validate(frame, _schema(), target="y", policy="quarantine", max_failure_fraction=0.1)
    assert kept.outcome == "quarantined"
    assert kept.quarantine["_row"].tolist() == [2, 4, 6]
    assert kept.data["spend"].dtype == "float64"
    assert len(kept.data) == 37


def test_coerce_converts_before_checking() -> None:
    frame = _frame()
    frame["y"] = frame["y"].astype(float)
    assert validate(frame, _schema(), target="y").outcome == "failed"  # float64 is not int64
    result = validate(frame, _schema(), target="y", coerce=True)
    assert result.outcome == "passed"
    assert result.data["y"].dtype == "int64"


def test_whole_table_failures_are_never_quarantined() -> None:
    frame = _frame().drop(columns=["plan"])
    text = SCHEMA + "metadata: {pipespec: {rows: {min: 50, max: 1000}}}\n"
    result = validate(
        frame, _schema(text), target="y", policy="quarantine", max_failure_fraction=1.0
    )
    assert result.outcome == "failed"
    assert "whole table" in result.reason
    checks = {(f.column, f.check) for f in result.failures}
    assert checks == {("(table)", "min_rows(50)"), ("plan", "column_in_dataframe")}
    assert all(f.whole_table for f in result.failures)
    assert result.quarantine.empty


@pytest.mark.parametrize(
    ("labels", "task", "check"),
    [
        ([1] * 10, "binary", "at_least_two_classes"),
        ([None] * 10, "regression", "not_all_null"),
    ],
)
def test_basic_checks_without_a_schema(labels: list, task: str, check: str) -> None:
    frame = pd.DataFrame({"x": range(len(labels)), "y": labels})
    result = validate(frame, None, target="y", task=task)
    assert [(f.column, f.check) for f in result.failures] == [("y", check)]
    assert validate(frame.assign(y=range(len(labels))), None, target="y").outcome == "passed"


def test_dropped_columns_and_reserved_columns_pass_through() -> None:
    frame = _frame().drop(columns=["id"]).assign(_split="", w=1.0)
    frame.loc[30:, "_split"] = "test"
    text = SCHEMA + "strict: true\n"
    result = validate(frame, _schema(text), target="y", drop=("id",), weight="w")
    assert result.outcome == "passed", [(f.column, f.check) for f in result.failures]
    assert list(result.data.columns) == list(frame.columns)
    assert (result.data["_split"] == "test").sum() == 10


def test_default_schema_fits_the_embedded_data() -> None:
    from pipespec.stages.embedded import generate

    frame = generate(5000, 42).drop(columns=["customer_id"])
    schema = load(REPO / "schemas" / "default.yaml")
    result = validate(frame, schema, target="churned", task="binary", drop=("customer_id",))
    assert result.outcome == "passed", [(f.column, f.check) for f in result.failures]


def test_telco_strict_schema_names_total_charges_and_eleven() -> None:
    raw = pd.read_csv(shared(*TELCO))
    schema = load(REPO / "schemas" / "telco.yaml")
    result = validate(raw, schema, target="Churn", task="binary")
    assert [(f.column, f.check, f.count) for f in result.failures] == [
        ("TotalCharges", "dtype('float64')", 11)
    ]
    blanks = raw.loc[raw["TotalCharges"] == " ", "customerID"].tolist()
    assert result.quarantine["customerID"].tolist() == blanks
    kept = validate(
        raw, schema, target="Churn", task="binary", policy="quarantine", max_failure_fraction=0.01
    )
    assert kept.outcome == "quarantined"
    assert kept.data["TotalCharges"].dtype == "float64"
    assert len(kept.data) == len(raw) - 11
