"""Slices: the metrics on a named set of rows (a column's values, a range, or each quantile
bin), against bounds (``auc: ">= 0.85"``) and the largest gap allowed to all rows."""

from __future__ import annotations

from typing import Any

from pipespec.bundle.behavior.report import Check
from pipespec.bundle.behavior.rows import Labelled, Rows, gap, key, metrics, missing, quantile_bins
from pipespec.core.bounds import holds, parse_bound
from pipespec.core.config import SliceConfig
from pipespec.core.numbers import number


class Slices:
    """The ``behavior.slices`` checks, on the labelled rows."""

    kind = "slice"

    def __init__(self, rows: Rows, labelled: Labelled) -> None:
        self.rows, self.labelled = rows, labelled

    def run(self) -> None:
        for name, cfg in self.rows.spec.slices.items():
            self.rows.report.slices[name] = self.one(name, cfg)

    def one(self, name: str, cfg: SliceConfig) -> dict[str, Any]:
        column = self.rows.column(cfg.column, key("slices", name, "column"))
        values = self.labelled.rows[column]
        if cfg.bins is not None:
            return {
                label: self.result(f"{name}.{label}", f"{column} {where}", mask, cfg)
                for label, mask, where in quantile_bins(values, cfg.bins)
            }
        if cfg.values is not None:
            mask = isin(values, cfg.values)
            where = f"{column} in {list(cfg.values)}"
        else:
            mask = values.notna().to_numpy().copy()
            if cfg.min is not None:
                mask &= (values >= cfg.min).fillna(False).to_numpy()
            if cfg.max is not None:
                mask &= (values < cfg.max).fillna(False).to_numpy()
            where = f"{column} in [{number(cfg.min)}, {number(cfg.max)})"
        return self.result(name, where, mask, cfg)

    def result(self, name: str, where: str, mask: Any, cfg: SliceConfig) -> dict[str, Any]:
        import numpy as np

        rows, add = self.rows, self.rows.add
        mask = np.asarray(mask, dtype=bool)
        n = int(mask.sum())
        result: dict[str, Any] = {"where": where, "rows": n}
        if n < cfg.min_rows:  # too few rows to say anything: that is a failure of its own
            add(Check(self.kind, name, where, "rows", n, ">=", cfg.min_rows, False))
            return result
        values = metrics(rows.bundle, self.labelled.y[mask], self.labelled.s[mask])
        result.update(values)
        for metric, expr in sorted(cfg.bounds.items()):
            op, bound = parse_bound(key("slices", name, "bounds", metric), expr)
            value = rows.metric_value(values, metric, key("slices", name, "bounds"))
            passed = value is not None and holds(value, op, bound)
            add(Check(self.kind, name, where, metric, value, op, bound, passed))
        for metric, allowed in sorted(cfg.max_gap.items()):
            value = rows.metric_value(values, metric, key("slices", name, "max_gap"))
            overall = rows.report.overall.get(metric)
            found = None if value is None or overall is None else gap(metric, overall, value)
            result[f"gap_{metric}"] = found
            passed = found is not None and found <= allowed
            subject = f"{where}; overall {metric} {number(overall)}, slice {number(value)}"
            add(Check(self.kind, name, subject, f"gap_{metric}", found, "<=", allowed, passed))
        return result


def isin(values: Any, wanted: list[Any]) -> Any:
    """Where a column's value is one of ``wanted`` (or its text is one of theirs)."""
    texts = {str(v) for v in wanted}
    return values.map(lambda v: not missing(v) and (v in wanted or str(v) in texts)).to_numpy(
        dtype=bool
    )
