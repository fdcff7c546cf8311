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
    rounded,
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
        if metric == "auc":  # every segment's rows in this order: no segment sorts its own
            import numpy as np

            self.order = np.argsort(-self.labelled.s, kind="stable")
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
        """The segments of one column or a pair. A column's groups do not overlap (as a
        rule): then every row has one combination number, the rows of every combination are
        counted at once, and only the combinations with enough rows are scored, an AUC of
        all of them together (``grouped_auc``)."""
        if not all(self.codes[c] is not None for c in combo):
            self.masked(combo)
            return
        import numpy as np

        y, s, min_rows, metric = self.labelled.y, self.labelled.s, self.cfg.min_rows, self.metric
        sizes = [len(self.groups[c]) for c in combo]
        flat = np.zeros(len(y), dtype=np.int64)
        inside = np.ones(len(y), dtype=bool)
        for c, size in zip(combo, sizes, strict=True):
            code = typing.cast("np.ndarray", self.codes[c])
            flat = flat * size + np.maximum(code, 0)
            inside &= code >= 0
        flat[~inside] = -1
        total = math.prod(sizes)
        counts = np.bincount(flat[inside], minlength=total)
        enough = counts >= min_rows
        if metric == "auc":  # an AUC over a handful of positives says nothing
            positives = np.bincount(flat[inside], weights=y[inside] == 1, minlength=total)
            enough &= np.minimum(positives, counts - positives) >= MIN_CLASS_ROWS
        chosen = np.flatnonzero(enough)
        if metric == "auc":
            values = [rounded(v) for v in grouped_auc(y, s, self.order, flat, chosen)]
        else:
            values = [metrics(self.rows.bundle, y[flat == k], s[flat == k], only=metric)
                      .get(metric) for k in chosen]  # fmt: skip
        for k, value in zip(chosen.tolist(), values, strict=True):
            if value is None:
                continue
            at = np.unravel_index(k, sizes)
            where = " and ".join(self.groups[c][int(i)][0] for c, i in zip(combo, at, strict=True))
            self.found.append({"where": where, "columns": list(combo), "rows": int(counts[k]),
                               metric: value, "gap": gap(metric, self.overall, value)})  # fmt: skip

    def masked(self, combo: tuple[str, ...]) -> None:
        """``segments`` for columns whose groups overlap: each combination's rows masked."""
        y, s, min_rows, metric = self.labelled.y, self.labelled.s, self.cfg.min_rows, self.metric
        for chosen in itertools.product(*(self.groups[c] for c in combo)):
            mask = chosen[0][1]
            for _, other in chosen[1:]:
                mask = mask & other
            n = int(mask.sum())
            if n < min_rows:
                continue
            if metric == "auc" and _minority(y[mask]) < MIN_CLASS_ROWS:
                continue
            value = metrics(self.rows.bundle, y[mask], s[mask], only=metric).get(metric)
            if value is None:
                continue
            where = " and ".join(w for w, _ in chosen)
            self.found.append({"where": where, "columns": list(combo), "rows": n, metric: value,
                               "gap": gap(metric, self.overall, value)})  # fmt: skip

    def column_groups(self, name: str) -> Groups:
        """(description, row mask) of each value or bin of a column, on the labelled rows.
        A value's rows are those with its number among the column's distinct values (what
        ``values == value`` selects, counted as ``value_counts`` counts them), numbered
        once for all values."""
        import pandas as pd

        bins, min_rows = self.cfg.bins, self.cfg.min_rows
        values = self.labelled.rows[name]
        if values.dtype.kind in "if" and _more_distinct(values, bins):
            return [(f"{name} {where}", mask) for _, mask, where in quantile_bins(values, bins)]
        objects = values.astype("object")
        counts = objects.value_counts(dropna=False)
        numbers, distinct = pd.factorize(objects)
        number_of = {value: i for i, value in enumerate(distinct)}
        out = []
        for value, count in counts.items():
            if count < min_rows:
                continue
            if missing(value):
                out.append((f"{name} is missing", values.isna().to_numpy()))
            elif value in number_of:
                out.append((f"{name} = {value}", numbers == number_of[value]))
            else:  # (not one of factorize's values: compared as it is)
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


def grouped_auc(
    y: np.ndarray, s: np.ndarray, order: np.ndarray, group: np.ndarray, chosen: np.ndarray
) -> list[float]:
    """The AUC of the rows of each group in ``chosen`` (``group``: each row's group, -1 for
    none; ``order``: ``np.argsort(-s, kind="stable")``): ``core.model_metrics.auc`` of
    ``y[group == k], s[group == k]`` bit for bit (nan unless both classes occur), with one
    sort for all groups instead of one per group.

    Filtering the stably sorted rows keeps each group's rows in the order its own stable
    sort gives (score descending, ties in row order); a stable sort by group then makes
    each group contiguous. The counts at each distinct score are whole numbers (exact in
    float64), the rates are each count divided by the group's total and the trapezoids are
    the same elementwise operations as ``core.model_metrics.auc``'s; only each group's sum
    is its own (numpy's pairwise sum of the same terms)."""
    import numpy as np

    if not len(chosen):
        return []
    # each row's place among the chosen groups (-1: none), the rows in score order
    slot = np.full(max(int(group.max(initial=-1)), int(chosen.max())) + 2, -1, dtype=np.int64)
    slot[chosen + 1] = np.arange(len(chosen))
    member = slot[group[order] + 1]
    inside = member >= 0
    rows, member = order[inside], member[inside]
    small = np.int16 if len(chosen) <= np.iinfo(np.int16).max else np.int64
    regroup = np.argsort(member.astype(small), kind="stable")  # (a radix sort on int16)
    rows, member = rows[regroup], member[regroup]
    yy = (y[rows] == 1).astype(np.int64)  # model_metrics._binary
    ss = np.asarray(s, dtype=np.float64)[rows]
    sizes = np.bincount(member, minlength=len(chosen))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    last = starts + sizes - 1
    # the last row of each distinct score in its group (model_metrics._thresholds)
    end = np.ones(len(ss), dtype=bool)
    end[:-1] = (ss[1:] - ss[:-1]) != 0
    end[last[sizes > 0]] = True
    at = np.flatnonzero(end)
    owner = member[at]
    cumulative = np.cumsum(yy, dtype=np.float64)
    before = np.where(starts > 0, cumulative[np.maximum(starts - 1, 0)], 0.0)
    tps = cumulative[at] - before[owner]
    fps = 1 + (at - starts[owner]).astype(np.float64) - tps
    # roc_curve's collinear points dropped: an inner point whose second differences are 0
    keep = np.ones(len(at), dtype=bool)
    if len(at) > 2:
        inner = np.zeros(len(at), dtype=bool)
        inner[1:-1] = (owner[:-2] == owner[1:-1]) & (owner[2:] == owner[1:-1])
        dfps, dtps = fps[1:] - fps[:-1], tps[1:] - tps[:-1]
        bend = np.ones(len(at), dtype=bool)
        bend[1:-1] = np.logical_or(dfps[1:] - dfps[:-1], dtps[1:] - dtps[:-1])
        keep = ~inner | bend
    fps, tps, owner = fps[keep], tps[keep], owner[keep]
    points = np.bincount(owner, minlength=len(chosen))  # kept points of each group
    # each group's curve from (0, 0): its points after a leading zero
    lead = np.concatenate(([0], np.cumsum(points + 1)[:-1]))
    width = int((points + 1).sum())
    slots = np.ones(width, dtype=bool)
    slots[lead] = False
    fx, tx = np.zeros(width), np.zeros(width)
    fx[slots], tx[slots] = fps, tps
    group_of = np.repeat(np.arange(len(chosen)), points + 1)
    ends = lead + points  # each group's last point: its totals
    with np.errstate(divide="ignore", invalid="ignore"):  # a one-class group: not used
        fpr, tpr = fx / fx[ends][group_of], tx / tx[ends][group_of]
        terms = (fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0
    positives = np.bincount(member, weights=yy, minlength=len(chosen)).tolist()
    out = []
    groups = zip(positives, sizes.tolist(), lead.tolist(), ends.tolist(), strict=True)
    for ones, n, first, final in groups:
        both = 0 < ones < n  # model_metrics.auc: nan unless both classes occur
        out.append(float(terms[first:final].sum()) if both else math.nan)
    return out


def _more_distinct(values: Any, bins: int) -> bool:
    """``values.nunique() > bins``, most often decided on the first rows."""
    import numpy as np

    if values.dtype == np.float64:
        head = np.unique(values.to_numpy()[:256])  # NaN, if any, once and last
        if len(head) - int(np.isnan(head[-1:]).sum()) > bins:
            return True
    return bool(values.nunique() > bins)


def _minority(y: np.ndarray) -> int:
    positives = int((y == 1).sum())
    return min(positives, len(y) - positives)


def _rounded(segment: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in segment.items()}
