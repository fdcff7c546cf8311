"""The reading contract is decided once, at load (docs/architecture.md, "One reading
contract"): a text column that holds numbers is read as numbers; a token there that the
reading options do not make a number (Titanic's missing ages written as '?', 'abc', 'inf',
1e308) stops load naming the column, rows, tokens and the fix, or, with
`dataset.coerce_numeric`, is read as missing by the reader that serves. Empty columns are
dropped; a column not found gets close names and the separator; a numeric target with many
values under a classification task is pointed at `regression`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from helpers import SMALL, run_cli, run_tool, shared
from pipespec.bundle.reader import clean, clean_records, marker_like, read_arrow_rows
from pipespec.core.documents import ReadOptions
from pipespec.core.errors import DataError
from pipespec.stages.load import decide_reading, not_found

BASE = {"target": "Survived", "task": "binary", "dtypes": {}, "drop": [], "path": "raw.csv"}


def _titanic_with_markers(path: Path, sep: str = ";") -> Path:
    """Kaggle Titanic as a ';'-separated file whose missing values are written '?' (the
    quirk of UCI-style files: Age, a numeric column, holds 177 of them)."""
    frame = pd.read_csv(shared("titanic", "train.csv"))
    frame.to_csv(path, sep=sep, index=False, na_rep="?")
    return path


def _read(path: Path, **ds: object) -> dict[str, pa.Table]:
    spec = {**BASE, "sep": ";", **ds}
    table = read_arrow_rows(path, ReadOptions.from_dataset(spec), where=str(path))
    return decide_reading(spec, {"path": table})


def test_marker_in_numeric_column_stops_load_naming_column_rows_tokens_and_fix(tmp_path):
    path = _titanic_with_markers(tmp_path / "raw.csv")
    with pytest.raises(DataError, match=r"column 'Age' of raw.csv \(dataset.path\)") as info:
        _read(path)
    text = str(info.value)
    assert "177 value(s) that are not finite numbers" in text
    assert "row 6: '?'" in text  # Age of PassengerId 6 is missing
    assert "'?' x177" in text
    assert "`na_values: ['?']`" in text
    assert "'dataset.na_values=[\"?\"]'" in text  # as typed in bash
    assert "dataset.coerce_numeric: true" in text


def test_declared_marker_reads_numbers_with_missing(tmp_path):
    path = _titanic_with_markers(tmp_path / "raw.csv")
    table = _read(path, na_values=["?"])["path"]
    assert table.schema.field("Age").type == pa.float64()
    assert table["Age"].null_count == 177
    assert table["Cabin"].null_count == 687  # a text column: its '?' are missing too


def test_coerce_numeric_reads_non_numbers_as_missing_as_serving_does(tmp_path, capsys):
    path = _titanic_with_markers(tmp_path / "raw.csv")
    table = _read(path, coerce_numeric=True)["path"]
    assert table.schema.field("Age").type == pa.float64()
    assert table["Age"].null_count == 177
    assert table.to_pandas()["Age"].dtype == "float64"  # no pandas metadata of the old type
    assert "read 177 value(s) of 'Age'" in capsys.readouterr().err
    # the same rule, where serving reads: a file's text and a JSON record
    options = ReadOptions(sep=";", coerce_numeric=True, numeric=("Age", "Fare"))
    frame = clean(pd.DataFrame({"Age": ["22", "?", "inf"], "Fare": ["1e308", "7.25", " "]}),
                  options, "x")  # fmt: skip
    assert frame["Age"].isna().tolist() == [False, True, True]
    assert frame["Fare"].isna().tolist() == [True, False, True]
    [record] = clean_records([{"Age": "?", "Fare": 7.25, "Sex": "?"}], options)
    assert record == {"Age": None, "Fare": 7.25, "Sex": "?"}


@pytest.mark.parametrize(
    ("token", "shown"), [("abc", "abc"), ("inf", "inf"), ("1e308", "1e+308"), ("-1e309", "-inf")]
)
def test_one_bad_token_or_non_finite_number_is_refused(tmp_path, token, shown):
    values = [str(v) for v in range(100)]
    values[41] = token
    path = tmp_path / "raw.csv"
    pd.DataFrame({"x": values, "Survived": [0, 1] * 50}).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"column 'x'.*row 42: '{re.escape(shown)}'"):
        _read(path, sep=",")
    table = _read(path, sep=",", coerce_numeric=True)["path"]
    assert table["x"].null_count == 1


def test_empty_column_is_dropped_with_a_notice(tmp_path, capsys):
    path = tmp_path / "raw.csv"
    pd.DataFrame({"x": range(10), "empty": [None] * 10, "Survived": [0, 1] * 5}).to_csv(
        path, index=False
    )
    table = _read(path, sep=",")["path"]
    assert table.column_names == ["x", "Survived"]
    assert "dropped 1 column(s) without a single value" in capsys.readouterr().err


def test_column_not_found_suggests_close_names_and_the_separator(tmp_path):
    path = _titanic_with_markers(tmp_path / "raw.csv")
    one = read_arrow_rows(path, ReadOptions(), where="raw.csv")  # ',' read: one column
    error = not_found("target column 'Survived' (dataset.target)", ["Survived"], one, "raw.csv")
    assert "holding ';'" in str(error)
    assert "\"dataset.sep=';'\"" in str(error)
    table = read_arrow_rows(path, ReadOptions(sep=";"), where="raw.csv")
    error = not_found("target column 'survived' (dataset.target)", ["survived"], table, "raw.csv")
    assert "Did you mean 'Survived' for 'survived'?" in str(error)


def test_marker_like_tokens():
    assert all(marker_like(t) for t in ["?", " ? ", "-", "n/a", "NA", "--", "null"])
    assert not any(marker_like(t) for t in ["abc", "12", "Male"])


# --- end to end: the must-show of the reading contract -----------------------------------


@pytest.mark.slow
def test_marker_file_fails_at_load_without_na_values_and_trains_and_serves_with_it(new_project):
    from bundle_helpers import start_server

    root = new_project()
    _titanic_with_markers(root / "raw.csv")
    args = (
        "dataset=csv",
        "dataset.path=raw.csv",
        "dataset.target=Survived",
        "dataset.task=binary",
        "dataset.sep=';'",
        "dataset.drop=[PassengerId]",
        SMALL[1],
    )
    proc = run_cli("run", *args, cwd=root, check=False)
    assert proc.returncode != 0
    assert "stage 'load': column 'Age' of raw.csv (dataset.path)" in proc.stderr
    assert "`na_values: ['?']`" in proc.stderr
    assert not (root / "data" / "load" / "data.parquet").exists()

    run_cli("run", *args, 'dataset.na_values=["?"]', cwd=root)
    out = root / "scored.csv"
    run_cli("predict", "--bundle", "models/bundle", "raw.csv", str(out), cwd=root)
    scored = pd.read_csv(out)
    assert len(scored) == 891
    assert scored["prediction"].between(0, 1).all()
    raw = pd.read_csv(root / "raw.csv", sep=";", dtype=str, keep_default_na=False)
    server = start_server(root / "models" / "bundle", root)
    try:
        body = [dict(r) for r in raw.drop(columns=["Survived", "PassengerId"]).iloc[:6]
                .to_dict(orient="records")]  # fmt: skip
        for record in body:  # JSON as a client sends it: numbers as numbers, '?' as given
            for key in ("Pclass", "SibSp", "Parch", "Fare", "Age"):
                if record[key] != "?":
                    record[key] = float(record[key])
        assert body[5]["Age"] == "?"
        answer = server.client.post("/predict", json=body)
        assert answer.status_code == 200, answer.text
        got = [p["probability"] for p in answer.json()["predictions"]]
        np.testing.assert_allclose(got, scored["prediction"].iloc[:6], rtol=1e-12)
    finally:
        server.stop()

    # coerce_numeric instead: the '?' of Age read as missing, counted in the model card
    run_cli("compose", *args, "dataset.coerce_numeric=true", cwd=root)
    run_tool("dvc", "repro", "package", cwd=root)  # up to the bundle only: what is checked
    card = json.loads((root / "models/bundle/card.json").read_text())
    assert card["data"]["train"]["coerced_missing"] == {"Age": 177}
    assert (
        "177 value(s) that were not numbers read as missing (dataset.coerce_numeric): "
        "`Age` 177" in (root / "models/bundle/card.md").read_text()
    )


def test_short_ragged_row_stops_load_naming_file_rows_and_field_counts(tmp_path):
    """Titanic with two rows cut short (their last two fields gone): pandas would read them
    with Cabin and Embarked missing; load refuses the file instead."""
    from pipespec.stages.load import read_source

    lines = shared("titanic", "train.csv").read_text().splitlines(keepends=True)
    for number in (10, 21):  # file lines (the header is line 1): rows 9 and 20
        lines[number - 1] = lines[number - 1].rstrip("\n").rsplit(",", 2)[0] + "\n"
    path = tmp_path / "raw.csv"
    path.write_text("".join(lines))
    ds = {**BASE, "source": "csv"}
    with pytest.raises(DataError, match=r"^raw.csv \(dataset.path\): 2 row\(s\) with few") as info:
        read_source(ds, seed=0, root=tmp_path)
    text = str(info.value)
    assert "than the 12 columns of the header" in text
    assert "row 9 (line 10): 10 fields, row 20 (line 21): 10 fields" in text
    assert "Complete or remove these rows" in info.value.hint
    # the file as published reads (its last column has missing values: it was scanned)
    table = read_source(ds | {"path": str(shared("titanic", "train.csv"))}, seed=0, root=tmp_path)
    assert table.shape == (891, 12)
    assert table["Embarked"].isna().sum() == 2
