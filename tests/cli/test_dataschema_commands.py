"""`pipespec schema infer` proposes `dataset.na_values` for marker-like tokens it sees."""

from __future__ import annotations

import pandas as pd

from helpers import run_main, shared
from pipespec.stages.dataschema import marker_tokens


def test_marker_tokens_are_found_in_text_columns_only():
    frame = pd.DataFrame(
        {"age": ["1", "?", "3", "n/a"], "job": ["-", "a", "b", "-"], "n": [1.0, 2.0, 3.0, 4.0]}
    )
    assert marker_tokens(frame) == {"-": {"job": 2}, "?": {"age": 1}, "n/a": {"age": 1}}
    assert marker_tokens(frame, known=["?", "n/a"]) == {"-": {"job": 2}}


def test_schema_infer_proposes_na_values(tmp_path):
    raw = tmp_path / "raw.csv"
    pd.read_csv(shared("titanic", "train.csv")).to_csv(raw, sep=";", index=False, na_rep="?")
    proc = run_main("schema", "infer", "--sep", ";", str(raw), cwd=tmp_path)
    assert "'?' in Age (177), Cabin (687), Embarked (2)" in proc.stderr
    assert "`na_values: ['?']`" in proc.stderr
    assert proc.stdout.startswith("# pandera YAML schema")
    proc = run_main("schema", "infer", "--sep", ";", "--na-values", "?", str(raw), cwd=tmp_path)
    assert "missing-value markers" not in proc.stderr


def test_schema_infer_argument_errors(tmp_path):
    result = run_main("schema", "infer", "x.csv", "--max-categories", "-1", cwd=tmp_path,
                      check=False)  # fmt: skip
    assert result.returncode == 2
    assert "argument --max-categories: expected a whole number >= 0, got -1" in result.stderr
    result = run_main("schema", "infer", "missing.csv", cwd=tmp_path, check=False)
    assert (result.returncode, result.stderr) == (4, "error: data file not found: missing.csv\n")
    (tmp_path / "schema.yaml").write_text("kept\n")
    result = run_main("schema", "infer", "missing.csv", "--out", "schema.yaml", cwd=tmp_path,
                      check=False)  # fmt: skip
    assert result.returncode == 2
    assert "schema.yaml exists (--out): refusing to overwrite it" in result.stderr
    assert (tmp_path / "schema.yaml").read_text() == "kept\n"
