"""Minimum-functionality cases: a malformed case is refused naming the field, an unusual one
is predicted, a wrong answer is named with its bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import gen
from pipespec.core.errors import ConfigError, DataError


def test_cases_refused_predicted_and_failed(run_spec, trained_project: Path, tmp_path) -> None:
    source = (trained_project / "configs" / "behavior" / "default_cases.csv").read_text()
    header, *rows = source.strip().splitlines()
    # malformed (a word for a number) is refused; unusual (an unseen category) is predicted
    broken = rows[0].replace(",60,", ",sixty,").replace("loyal", "bad tenure")
    unseen = rows[0].replace(",two-year,", ",ten-year,").replace("loyal", "unseen contract")
    wrong = rows[1].replace(",,0.5,", ",,0.99,").replace("new month", "impossible month")
    gen(tmp_path, {
        "cases.csv": "\n".join([header, *rows, broken, unseen, wrong]) + "\n",
        "no_expectations.csv": "tenure_months\n3\n",
    })  # fmt: skip
    report = run_spec(cases={"path": str(tmp_path / "cases.csv"), "max_failure_rate": 0.0})
    failures = {f["case"]: f["reason"] for f in report["cases"]["failures"]}
    assert set(failures) == {"bad tenure two-year customer", "impossible month-to-month fiber "
                             "customer with complaints"}  # fmt: skip
    assert "refused" in failures["bad tenure two-year customer"]
    assert "tenure_months" in failures["bad tenure two-year customer"]
    assert (
        "expected >= 0.99" in failures["impossible month-to-month fiber customer with complaints"]
    )
    assert report["cases"]["total"] == len(rows) + 3
    check = next(c for c in report["checks"] if c["kind"] == "cases")
    assert check["name"] == "cases.csv"
    assert not check["passed"]
    with pytest.raises(DataError, match=r"no_expectations\.csv: no expected_label, expected_min"):
        run_spec(cases={"path": str(tmp_path / "no_expectations.csv")})
    with pytest.raises(ConfigError, match=r"behavior\.cases\.path: no file .*none\.csv"):
        run_spec(cases={"path": str(tmp_path / "none.csv")})
