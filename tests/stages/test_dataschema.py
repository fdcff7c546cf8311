"""The schema document: pandera YAML files read with errors that name the file and key,
the shipped schemas, schemas inferred from data (and passed by it), `pipespec schema infer`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO, gen
from pipespec.bundle.reader import read_rows
from pipespec.cli.main import main
from pipespec.core.documents import ReadOptions
from pipespec.core.errors import ConfigError
from pipespec.engine.scaffold import template_root
from pipespec.stages.dataschema import dump, from_dict, infer, load
from pipespec.stages.schema_engine import validate


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": [f"C{i:03d}" for i in range(n)],
            "age": rng.integers(18, 90, n).astype(float),
            "plan": rng.choice(["basic", "plus"], n),
            "y": np.arange(n) % 2,
        }
    )


def test_schema_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    cases = {
        "colums: {a: {dtype: int64}}": r"schemas/bad\.yaml.*unknown key 'colums'(?s:.*)"
        r"Did you mean 'columns'",
        "columns: {a: {dtype: int64, greter_than: 3}}": r"unknown key 'greter_than' in column "
        r"'a'(?s:.*)Did you mean 'greater_than'",
        "columns: {a: {dtype: flaot64}}": r"column 'a': TypeError: data type 'flaot64'",
        "columns: {a: {dtype: int64, in_range: {min: 0}}}": r"column 'a': TypeError",
        "metadata: {pipespec: {rows: {minimum: 3}}}": r"unknown key 'minimum' in "
        r"metadata\.pipespec\.rows",
        "drop_invalid_rows: true": r"drop_invalid_rows(?s:.*)schema\.policy=quarantine",
        "columns: {a: {dtype: float64, in_range: {min_value: -1.0e3, max_value: 5}}}": r"column "
        r"'a': in_range bound '-1\.0e3' is text, not a number(?s:.*)1\.0e\+3",
        "columns: [\n": r"schemas/bad\.yaml \(schema\.path\): not valid YAML",
        "- a\n- b\n": r"expected a mapping",
    }
    gen(tmp_path, {f"bad{i}.yaml": text for i, text in enumerate(cases)})
    for i, match in enumerate(cases.values()):
        with pytest.raises(ConfigError, match=match):
            load(tmp_path / f"bad{i}.yaml", "schemas/bad.yaml")
    with pytest.raises(ConfigError, match=r"schemas/none\.yaml \(schema\.path\): file not found"):
        load(tmp_path / "none.yaml", "schemas/none.yaml")


def test_shipped_schemas_load_and_match_the_template() -> None:
    for name in ("default", "telco"):
        ours = REPO / "schemas" / f"{name}.yaml"
        assert ours.read_bytes() == (template_root() / "schemas" / f"{name}.yaml").read_bytes()
        assert load(ours).columns
        config = yaml.safe_load((REPO / "configs" / "schema" / f"{name}.yaml").read_text())
        assert config["path"] == f"schemas/{name}.yaml"


def test_inferred_schema_passes_its_own_data(tmp_path: Path) -> None:
    frame = _frame().assign(
        when=pd.date_range("2024-01-01", periods=40, freq="D"), flag=[True, False] * 20
    )
    frame.loc[0, "age"] = np.nan
    doc = infer(frame, max_categories=5)
    assert doc["columns"]["id"] == {"dtype": "str", "nullable": False, "unique": True}
    assert doc["columns"]["plan"]["isin"] == ["basic", "plus"]
    assert doc["columns"]["age"]["nullable"] is True
    text = dump(doc, source="x.csv", rows=len(frame))
    assert text.startswith("# pandera YAML schema")
    schema = from_dict(yaml.safe_load(text), "x.yaml")
    assert validate(frame, schema, target="y").outcome == "passed"
    frame.to_parquet(tmp_path / "x.parquet")
    again = infer(
        read_rows(tmp_path / "x.parquet", ReadOptions(), where="x.parquet"), max_categories=5
    )
    assert again == doc


def test_schema_infer_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "data.tsv"
    csv.write_text("1\ta\t?\n2\tb\t3.5\n3\ta\t1.0\n")
    assert (
        main(["schema", "infer", str(csv), "--sep", "\\t", "--no-header", "--na-values", "?"]) == 0
    )
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["columns"]["Column_1"]["isin"] == ["a", "b"]
    assert doc["columns"]["Column_2"] == {
        "dtype": "float64",
        "nullable": True,
        "in_range": {"min_value": 1.0, "max_value": 3.5},
    }
    out = tmp_path / "schemas" / "data.yaml"
    argv = ["schema", "infer", str(csv), "--sep", "tab", "--no-header", "--out", str(out)]
    assert main(argv) == 0
    written = out.read_bytes()
    assert main(argv) == 2  # refuses to overwrite
    assert "exists (--out): refusing to overwrite" in capsys.readouterr().err
    assert out.read_bytes() == written
    assert main([*argv, "--force"]) == 0
    assert main(["schema", "infer", str(tmp_path / "nope.csv")]) == 4
    assert "data file not found" in capsys.readouterr().err
