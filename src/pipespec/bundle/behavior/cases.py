"""Minimum-functionality cases: a CSV of input records and what the model must answer for
each (``expected_label``, ``expected_min``/``expected_max``), with a share allowed to fail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.bundle.behavior.report import Check
from pipespec.bundle.behavior.rows import Rows, key, missing
from pipespec.core.bounds import holds
from pipespec.core.errors import ConfigError, DataError
from pipespec.core.numbers import number

if TYPE_CHECKING:
    import pandas as pd

CASE_COLUMNS = ("case", "expected_label", "expected_min", "expected_max")


class Cases:
    """The ``behavior.cases`` check; ``base`` is the folder a relative path starts from."""

    kind = "cases"

    def __init__(self, rows: Rows, base: Path) -> None:
        self.rows, self.base = rows, base

    def run(self) -> None:
        import pandas as pd

        rows = self.rows
        cfg = rows.spec.cases
        if not cfg.path:
            return
        path = Path(cfg.path)
        path = path if path.is_absolute() else self.base / path
        try:
            table = pd.read_csv(path)
        except FileNotFoundError:
            raise ConfigError(f"{key('cases', 'path')}: no file {path}") from None
        except (ValueError, OSError) as exc:
            raise DataError(f"{key('cases', 'path')}: cannot read {path}: {exc}") from None
        if not any(c in table.columns for c in CASE_COLUMNS[1:]):
            raise DataError(
                f"{path}: no expected_label, expected_min or expected_max column",
                hint="Each row is a case: input fields, then what the model must answer.",
            )
        names = (
            table["case"].astype(str) if "case" in table else pd.Series(range(1, len(table) + 1))
        )
        inputs = table.drop(columns=[c for c in CASE_COLUMNS if c in table.columns])
        refused: dict[int, str] = {}
        for problem in rows.bundle.check(inputs).iter_problems(kind="refused"):
            refused.setdefault(problem.row, problem.message())
        predicted = rows.bundle.predict(inputs, on_invalid="skip", threads=rows.threads)
        failures = []
        for i in range(len(table)):
            case = str(names.iloc[i])
            if i in refused or i not in predicted.index:
                failures.append({"case": case, "reason": f"refused: {refused.get(i, '?')}"})
                continue
            reason = failure(table.iloc[i], predicted.loc[i])
            if reason:
                failures.append({"case": case, "reason": reason})
        rate = len(failures) / len(table) if len(table) else 0.0
        rows.report.cases = {
            "path": str(cfg.path),
            "total": len(table),
            "failed": len(failures),
            "failure_rate": rate,
            "failures": failures,
        }
        shown = "; ".join(f"case {f['case']}: {f['reason']}" for f in failures[:3])
        subject = f"{len(table)} cases" + (f"; {shown}" if shown else "")
        rows.add(Check(self.kind, Path(cfg.path).name, subject, "failure_rate", rate, "<=",
                       cfg.max_failure_rate, rate <= cfg.max_failure_rate))  # fmt: skip


def failure(case: pd.Series, row: pd.Series) -> str | None:
    """Why the prediction ``row`` does not answer ``case``; None when it does."""
    if "expected_label" in case.index and not missing(case["expected_label"]):
        expected, got = case["expected_label"], row.get("label")
        if str(got) != str(expected) and not _same_number(got, expected):
            return f"label {got!r}, expected {expected!r}"
    value = float(row["prediction"]) if "prediction" in row.index else None
    for name, op in (("expected_min", ">="), ("expected_max", "<=")):
        if name in case.index and not missing(case[name]):
            bound = float(case[name])
            if value is None or not holds(value, op, bound):
                return f"prediction {number(value)}, expected {op} {bound:g}"
    return None


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False
