"""The validate stage in-process: every output written, the stage failing with a message that
names column, check and count, the quarantine policy passing the rest on, a byte-stable
report; without a schema file the table passes on as the very same file, or, when the
pipeline reads the input itself, is not written at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import gen
from pipespec.core.documents import TableMeta
from pipespec.core.errors import DataError
from pipespec.stages import validate
from pipespec.stages.context import ParamsView, StageContext
from pipespec.stages.parquet import read_table, write_table

SCHEMA = "columns:\n  plan: {dtype: str, isin: [basic, plus]}\n  y: {dtype: int64, isin: [0, 1]}\n"


def _context(tmp_path: Path, path: str | None, policy: str, fraction: float) -> StageContext:
    frame = pd.DataFrame({"plan": ["basic", "plus"] * 20, "y": np.arange(40) % 2})
    frame.loc[[3, 9], "plan"] = "gold"
    write_table(frame, tmp_path / "in.parquet", TableMeta(target="y", task="binary"))
    schema = {"name": "t", "path": path, "policy": policy, "max_failure_fraction": fraction,
              "coerce": False}  # fmt: skip
    params = {"schema": schema, "dataset": {"target": "y", "drop": []}}
    return StageContext(
        "validate",
        ParamsView(params, ("schema", "dataset.target", "dataset.drop"), "validate"),
        {"data": tmp_path / "in.parquet"},
        {n: tmp_path / f"{n}.out" for n in ("data", "report", "quarantine")},
        tmp_path,
    )


def test_stage_writes_every_output_and_fails_naming_column_check_count(tmp_path: Path) -> None:
    gen(tmp_path, {"schema.yaml": SCHEMA})
    ctx = _context(tmp_path, "schema.yaml", "fail", 0.0)
    with pytest.raises(DataError, match=r"plan: isin\(\['basic', 'plus'\]\) fails for 2 rows"):
        validate.run(ctx)
    assert not ctx.output("data").exists()
    assert json.loads(ctx.output("report").read_text())["outcome"] == "failed"
    quarantine, meta = read_table(ctx.output("quarantine"))
    assert quarantine["_row"].tolist() == [3, 9]
    assert meta == TableMeta(target="y", task="binary")

    ctx = _context(tmp_path, "schema.yaml", "quarantine", 0.1)
    validate.run(ctx)
    data, meta = read_table(ctx.output("data"))
    assert len(data) == 38
    assert meta.target == "y"
    first = ctx.output("report").read_bytes()
    validate.run(ctx)
    assert ctx.output("report").read_bytes() == first  # byte-stable


def test_without_a_schema_the_table_passes_on_as_read(tmp_path: Path) -> None:
    ctx = _context(tmp_path, None, "fail", 0.0)
    validate.run(ctx)
    assert ctx.output("data").read_bytes() == ctx.input("data").read_bytes()
    assert json.loads(ctx.output("report").read_text())["outcome"] == "passed"
    assert read_table(ctx.output("quarantine"))[0].empty


def test_without_a_schema_and_no_data_output_only_the_checks_are_written(tmp_path: Path) -> None:
    """The pipeline passes the table on (split reads load's file): validate writes its
    report and the empty quarantine, and no copy of the table."""
    ctx = _context(tmp_path, None, "fail", 0.0)
    del ctx.outputs["data"]
    validate.run(ctx)
    assert not (tmp_path / "data.out").exists()
    assert json.loads(ctx.output("report").read_text())["outcome"] == "passed"
    assert read_table(ctx.output("quarantine"))[0].empty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "quarantine.out",
                                                          "report.out"]  # fmt: skip
