"""The search for the weakest segments: every value (categorical) or quantile bin (numeric)
of one column, and of pairs of columns, with at least ``min_rows`` labelled rows, ranked by
how much worse the model does there than on all rows."""

from __future__ import annotations

import itertools
import math
import typing
from typing import TYPE_CHECKING, Any

from pipespec.bundle.behavior.report import Check
from pipespec.bundle.behavior.rows import (
    METRICS,
    Labelled,
    Rows,
    gap,
    key,
    metrics,
    missing,
    quantile_bins,
)

if TYPE_CHECKING:
    import numpy as np

PAIR_COLUMNS = 8  # the search pairs up the columns with the 8 weakest single-column segments
MIN_CLASS_ROWS = 10  # the search's AUC needs this many rows of each class in a segment

Groups = list[tuple[str, Any]]  # (description, row mask) of each value or bin of a column


class Search:
    """The ``behavior.search`` check, on the labelled rows."""

    kind = "search"

    def __init__(self, rows: Rows, labelled: Labelled) -> None:
        self.rows, self.labelled = rows, labelled
        self.cfg = rows.spec.search
        self.metric = self.cfg.metric or METRICS[rows.bundle.task][0]
        self.found: list[dict[str, Any]] = []

    def run(self) -> None:
        rows, cfg, metric = self.rows, self.cfg, self.metric
        report = rows.report
        overall = rows.metric_value(report.overall, metric, key("search", "metric"))
        if overall is None:
            report.notes.append(f"search: overall {metric} is undefined")
            return
        self.overall: float = overall
        schema = rows.bundle.schema.columns
        names = cfg.columns or [c.name for c in schema if c.type != "datetime"]
        self.groups: dict[str, Groups] = {}
        for name in names:
            rows.column(name, key("search", "columns"))
            self.groups[name] = self.column_groups(name)
        self.codes = {name: codes(found, len(self.labelled.y)) for name, found in
                      self.groups.items()}  # fmt: skip
        for name in names:
            self.segments((name,))
        if cfg.max_columns == 2:  # pairs among the columns with the weakest single segments
            worst: dict[str, float] = {}
            for seg in self.found:
                column = seg["columns"][0]
                worst[column] = max(worst.get(column, seg["gap"]), seg["gap"])
            weak = sorted((c for c in worst if worst[c] > 0), key=lambda c: (-worst[c], c))
            for combo in itertools.combinations(sorted(weak[:PAIR_COLUMNS], key=names.index), 2):
                self.segments(combo)
        self.found.sort(key=lambda s: (-s["gap"], s["where"]))
        top = [_rounded(s) for s in self.found[: cfg.top]]
        report.search = {
            "metric": metric,
            "overall": self.overall,
            "segments_tried": len(self.found),
            "weakest": top,
            "worst_gap": round(top[0]["gap"], 6) if top else None,
        }
        if cfg.max_gap is not None:
            for i, seg in enumerate(top):
                rows.add(
                    Check(self.kind, f"weakest[{i}]", f"{seg['where']}, {seg['rows']} rows",
                          f"gap_{metric}", seg["gap"], "<=", cfg.max_gap,
                          seg["gap"] <= cfg.max_gap)
                )  # fmt: skip

    def segments(self, combo: tuple[str, ...]) -> None:
        """The segments of one column or a pair: the rows of every combination counted at
        once (a column's groups do not overlap), and only the combinations with enough rows
        masked and scored."""
        import numpy as np

        y, s, min_rows, metric = self.labelled.y, self.labelled.s, self.cfg.min_rows, self.metric
        sizes = [len(self.groups[c]) for c in combo]
        counts = None
        if all(self.codes[c] is not None for c in combo):
            flat = np.zeros(len(y), dtype=np.int64)
            inside = np.ones(len(y), dtype=bool)
            for c, size in zip(combo, sizes, strict=True):
                code = typing.cast("np.ndarray", self.codes[c])
                flat = flat * size + np.maximum(code, 0)
                inside &= code >= 0
            counts = np.bincount(flat[inside], minlength=math.prod(sizes))
        for k, chosen in enumerate(itertools.product(*(self.groups[c] for c in combo))):
            if counts is not None and counts[k] < min_rows:
                continue
            mask = chosen[0][1]
            for _, other in chosen[1:]:
                mask = mask & other
            n = int(mask.sum())
            if n < min_rows:
                continue
            if metric == "auc" and _minority(y[mask]) < MIN_CLASS_ROWS:
                continue  # an AUC over a handful of positives says nothing
            value = metrics(self.rows.bundle, y[mask], s[mask], only=metric).get(metric)
            if value is None:
                continue
            where = " and ".join(w for w, _ in chosen)
            self.found.append({"where": where, "columns": list(combo), "rows": n, metric: value,
                               "gap": gap(metric, self.overall, value)})  # fmt: skip

    def column_groups(self, name: str) -> Groups:
        """(description, row mask) of each value or bin of a column, on the labelled rows."""
        bins, min_rows = self.cfg.bins, self.cfg.min_rows
        values = self.labelled.rows[name]
        if values.dtype.kind in "if" and values.nunique() > bins:
            return [(f"{name} {where}", mask) for _, mask, where in quantile_bins(values, bins)]
        counts = values.astype("object").value_counts(dropna=False)
        out = []
        for value, count in counts.items():
            if count < min_rows:
                continue
            if missing(value):
                out.append((f"{name} is missing", values.isna().to_numpy()))
            else:
                out.append((f"{name} = {value}", (values == value).fillna(False).to_numpy()))
        return out


def codes(groups: Groups, rows: int) -> np.ndarray | None:
    """Each row's group number among ``groups``, -1 for a row in none; None when two groups
    share a row (then no count can stand for the combinations' masks)."""
    import numpy as np

    out = np.full(rows, -1, dtype=np.int64)
    total = 0
    for i, (_, mask) in enumerate(groups):
        mask = np.asarray(mask, dtype=bool)
        out[mask] = i
        total += int(mask.sum())
    return out if total == int((out >= 0).sum()) else None


def _minority(y: np.ndarray) -> int:
    positives = int((y == 1).sum())
    return min(positives, len(y) - positives)


def _rounded(segment: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in segment.items()}
