"""The reference profile of the training inputs and predictions, and drift against it.

A numeric column is summarised by quantile bin edges with the count of training values per bin
(for PSI) and the empirical CDF at the 1st..99th percentiles (for a two-sample KS test
without keeping the rows); a categorical column by its category counts. Both keep their
missing count. Counts are integers, so the profile is exact and its JSON deterministic.

Current data is summarised the same way chunk by chunk (``Summary``), so monitoring works on
files larger than memory; ``compare`` then gives per column PSI, KS or chi-square, the change
in missing rate, and the alerts for the configured thresholds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipespec.bundle.columns import is_arrow, text_keys
from pipespec.bundle.inputs import CATEGORICAL, MALFORMED, NUMERIC, UNUSUAL, Checked, InputSchema

if TYPE_CHECKING:
    import numpy as np

PROFILE_VERSION = 2  # 2: the reference's own check rates ("calibration")
TOP_CATEGORIES = 200  # categories beyond the most frequent N are counted together as OTHER
OTHER = "__other__"
EPSILON = 1e-4  # floor of a bin's share in PSI, so an empty bin does not divide by zero
PREDICTION = "prediction"
THRESHOLD_KEYS = (
    "psi",
    "pvalue",
    "missing_rate",
    "violation_rate",
    "unusual_margin",
    "prediction_psi",
)
# Defaults of thresholds a bundle made before they existed does not record (core/config.py)
THRESHOLD_DEFAULTS = {"unusual_margin": 0.05}
Z_NOISE = 3.0  # a rate's rise must also exceed this many standard errors of its sampling noise
CALIBRATION = "calibration"


def numeric_profile(values: np.ndarray, bins: int) -> dict[str, Any]:
    """Bins, CDF and missing count of float values (NaN is missing)."""
    import numpy as np

    values = np.asarray(values, dtype="float64")
    present = np.sort(values[np.isfinite(values)])
    out: dict[str, Any] = {
        "type": NUMERIC,
        "rows": len(values),
        "missing": int(len(values) - len(present)),
    }
    if not len(present):
        out.update(edges=[], counts=[0], cdf_x=[], cdf_counts=[], mean=None, std=None)
        return out
    edges = np.unique(sorted_quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    grid = np.unique(sorted_quantile(present, np.linspace(0.01, 0.99, 99)))
    out.update(
        edges=edges.tolist(),
        counts=_bin_counts(present, edges).tolist(),
        cdf_x=grid.tolist(),
        cdf_counts=np.searchsorted(present, grid, side="right").tolist(),
        min=float(present[0]),
        max=float(present[-1]),
        mean=float(present.mean()),
        std=float(present.std()),
    )
    return out


def sorted_quantile(ordered: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(ordered, q)`` (its default, linear method) of values already sorted,
    bit for bit, without the partition numpy does first: the same neighbours, the same
    interpolation (numpy's ``_lerp``)."""
    import numpy as np

    n = len(ordered)
    virtual = (n - 1) * np.asarray(q, dtype="float64")
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1  # the largest value
    previous[above] = -1
    following[above] = -1
    previous_i, following_i = previous.astype(np.intp), following.astype(np.intp)
    a, b = ordered[previous_i], ordered[following_i]
    gamma = np.asarray(virtual - previous_i, dtype=virtual.dtype)
    diff = b - a
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def categorical_profile(values: Any) -> dict[str, Any]:
    """Counts of the most frequent categories (others together) and the missing count of
    category keys (text, None where missing; Arrow text is counted by Arrow)."""
    found, missing = _key_counts(values)
    rows = len(values)
    ordered = sorted(found, key=lambda kv: (-kv[1], kv[0]))
    top = dict(ordered[:TOP_CATEGORIES])
    other = sum(v for _, v in ordered[TOP_CATEGORIES:])
    return {"type": CATEGORICAL, "rows": rows, "missing": missing, "counts": top, "other": other}


def _key_counts(keys: Any) -> tuple[list[tuple[str, int]], int]:
    """How often each category key occurs among ``keys`` (``text_keys``' answer: text, None
    where missing; Arrow text is counted by Arrow), and how many are missing."""
    if is_arrow(keys):
        import pyarrow.compute as pc

        counted = pc.value_counts(keys)
        pairs = zip(
            counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
        )
        return [(str(k), int(v)) for k, v in pairs if k is not None], int(keys.null_count)
    import pandas as pd

    series = pd.Series(keys, dtype=object)
    found = [(str(k), int(v)) for k, v in series.dropna().value_counts().items()]
    return found, int(series.isna().sum())


def reference(
    schema: InputSchema,
    checked: Checked,
    predictions: np.ndarray,
    task: str,
    classes: list[Any],
    bins: int,
) -> dict[str, Any]:
    """The profile of the training inputs (as ``check`` conformed them) and of the model's
    predictions. Date/time columns are not profiled: their values move with time."""
    features: dict[str, Any] = {}
    for col in schema.columns:
        if col.type == CATEGORICAL:
            features[col.name] = categorical_profile(text_keys(checked.work[col.name]))
        elif col.type == NUMERIC:
            values = checked.work[col.name]
            features[col.name] = numeric_profile(values, bins)
    return {
        "version": PROFILE_VERSION,
        "rows": checked.rows,
        "features": features,
        PREDICTION: prediction_profile(predictions, task, classes, bins),
    }


def calibration(
    profile: dict[str, Any],
    checked: Checked,
    scores: np.ndarray,
    task: str,
    classes: list[Any],
    source: str,
) -> dict[str, Any]:
    """What the monitor's own checks give on reference data that is not the training rows
    themselves (the held-out valid rows, checked against the training-fitted schema): per
    feature its PSI against the profile, its missing count and its unusual values per reason;
    the PSI of the predictions. ``compare`` alerts only on rises beyond these."""
    summary = Summary(profile, task, classes)
    summary.add(checked, scores)
    features: dict[str, Any] = {}
    for name, stats in summary.features.items():
        found = summary.unusual.get(name, {})
        features[name] = {
            "psi": _round(_compare_column(stats, tests=False)["psi"]),
            "missing": stats.missing,
            "unusual": {key: found.get(key, 0) for key in UNUSUAL.values()},
        }
    prediction = _compare_column(summary.prediction, tests=False)
    return {
        "source": source,
        "rows": summary.rows,
        "malformed_rows": summary.malformed_rows,
        "features": features,
        PREDICTION: {"psi": _round(prediction["psi"])},
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 9)


def prediction_profile(scores: np.ndarray, task: str, classes: list[Any], bins: int) -> Any:
    """Predictions as one column: probability (binary), value (regression), label (multiclass)."""
    return (
        numeric_profile(scores, bins)
        if task != "multiclass"
        else categorical_profile(_labels(scores, classes))
    )


def _labels(scores: np.ndarray, classes: list[Any]) -> np.ndarray:
    import numpy as np

    if not len(scores):
        return np.zeros(0, dtype=object)
    return np.asarray([str(c) for c in classes], dtype=object)[scores.argmax(axis=1)]


@dataclass
class _Stats:
    """Running counts of one column of current data, on the reference's bins."""

    ref: dict[str, Any]
    rows: int = 0
    missing: int = 0
    counts: Any = None
    cdf_counts: Any = None
    categories: dict[str, int] = field(default_factory=dict)
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        import numpy as np

        self.rows += len(values)
        if self.ref["type"] == NUMERIC:
            values = np.asarray(values, dtype="float64")
            present = np.sort(values[np.isfinite(values)])
            self.missing += len(values) - len(present)
            edges = np.asarray(self.ref["edges"], dtype="float64")
            counts = _bin_counts(present, edges)
            grid = np.asarray(self.ref["cdf_x"], dtype="float64")
            cdf = np.searchsorted(present, grid, side="right")
            self.counts = counts if self.counts is None else self.counts + counts
            self.cdf_counts = cdf if self.cdf_counts is None else self.cdf_counts + cdf
            if len(present):
                self.total += float(present.sum())
                self.low = min(self.low, float(present[0]))
                self.high = max(self.high, float(present[-1]))
        else:
            found, missing = _key_counts(values)
            self.missing += missing
            for key, count in found:
                self.categories[key] = self.categories.get(key, 0) + count


class Summary:
    """Current data, summarised chunk by chunk on the reference profile's bins."""

    def __init__(self, profile: dict[str, Any], task: str, classes: list[Any]) -> None:
        self.profile = profile
        self.task = task
        self.classes = classes
        self.features = {name: _Stats(ref) for name, ref in profile["features"].items()}
        self.prediction = _Stats(profile[PREDICTION])
        self.rows = 0
        self.malformed_rows = 0  # rows with a malformed value: violations
        self.unusual_rows = 0  # rows with an unusual value (and none malformed)
        self.refused_rows = 0  # rows serving refuses (malformed, or unusual under strict)
        self.violations: dict[str, dict[str, int]] = {}  # column -> malformed reason -> values
        self.unusual: dict[str, dict[str, int]] = {}  # column -> unusual key -> values

    def add(self, checked: Checked, scores: np.ndarray) -> None:
        """Add one chunk: its checked inputs and the scores of its rows."""
        import numpy as np

        self.rows += checked.rows
        malformed = np.zeros(checked.rows, dtype=bool)
        unusual = np.zeros(checked.rows, dtype=bool)
        for column, reason, rows, _ in checked.problems:
            if reason in MALFORMED:
                malformed[rows] = True
                per = self.violations.setdefault(column, {})
                per[reason] = per.get(reason, 0) + len(rows)
            else:
                unusual[rows] = True
                key = UNUSUAL[reason]
                found = self.unusual.setdefault(column, {})
                found[key] = found.get(key, 0) + len(rows)
        self.malformed_rows += int(malformed.sum())
        self.unusual_rows += int((unusual & ~malformed).sum())
        self.refused_rows += checked.n_invalid
        for name, stats in self.features.items():
            if stats.ref["type"] == CATEGORICAL:
                stats.add(text_keys(checked.work[name]))
            else:
                stats.add(checked.work[name])
        if self.task == "multiclass":
            self.prediction.add(_labels(scores, self.classes))
        else:
            self.prediction.add(scores)


def compare(summary: Summary, thresholds: dict[str, Any]) -> dict[str, Any]:
    """Drift of every column and of the predictions, and the alerts the thresholds raise.

    Malformed rows (what serving refuses whatever the strictness) are violations: their
    share alerts at ``violation_rate``. Every other signal is calibrated on the reference:
    the profile's ``calibration`` holds what the same checks give on held-out reference rows,
    and a signal alerts only when the current data rises beyond it by the configured margin
    (and by more than its sampling noise, ``Z_NOISE`` standard errors)."""
    calib = summary.profile.get(CALIBRATION) or {}
    ref_rows = int(calib.get("rows") or 0)
    ref_features = calib.get("features") or {}
    features = []
    alerts: list[str] = []
    for name, stats in summary.features.items():
        result = _compare_column(stats)
        result["name"] = name
        result["violations"] = sum(summary.violations.get(name, {}).values())
        result["unusual"] = _unusual(
            summary.unusual.get(name, {}), summary.rows, ref_features.get(name), ref_rows
        )
        reference = ref_features.get(name) or {}
        result["psi_reference"] = reference.get("psi")
        result["psi_allowance"] = _psi_allowance(
            reference.get("psi"), ref_rows, stats, summary.profile["rows"]
        )
        result["alerts"] = _column_alerts(f"feature '{name}'", result, stats, thresholds)
        result["drift"] = bool(result["alerts"])
        alerts.extend(result["alerts"])
        features.append(result)
    prediction = _compare_column(summary.prediction)
    prediction["alerts"] = []
    psi = prediction.get("psi")
    prediction["psi_reference"] = (calib.get(PREDICTION) or {}).get("psi")
    allowance = _psi_allowance(
        prediction["psi_reference"], ref_rows, summary.prediction, summary.profile["rows"]
    )
    prediction["psi_allowance"] = allowance
    if psi is not None and psi - allowance >= thresholds["prediction_psi"]:
        prediction["alerts"].append(
            f"predictions: PSI {psi:.3f} >= {thresholds['prediction_psi']} over the "
            f"reference's own {allowance:.3f} (production.monitor.prediction_psi)"
        )
    prediction["drift"] = bool(prediction["alerts"])
    alerts.extend(prediction["alerts"])
    rate = _rate(summary.malformed_rows, summary.rows)
    if summary.rows and rate >= thresholds["violation_rate"]:
        alerts.append(
            f"schema violations: {rate:.1%} of rows malformed >= "
            f"{thresholds['violation_rate']:.1%} (production.monitor.violation_rate)"
        )
    unusual_rate = _rate(summary.unusual_rows, summary.rows)
    return {
        "rows": summary.rows,
        "reference_rows": summary.profile["rows"],
        "valid_rows": summary.rows - summary.malformed_rows,
        "violations": {
            "rows": summary.malformed_rows,
            "refused_rows": summary.refused_rows,
            "rate": rate,
            "by_column": {
                k: dict(sorted(v.items())) for k, v in sorted(summary.violations.items())
            },
        },
        "unusual": {
            "rows": summary.unusual_rows,
            "rate": unusual_rate,
            "reference": {"source": calib.get("source"), "rows": ref_rows},
            "by_column": {f["name"]: f["unusual"] for f in features if f["unusual"]},
        },
        "features": features,
        "prediction": prediction,
        "thresholds": dict(thresholds),
        "alerts": alerts,
        "status": "drift" if alerts else "ok",
    }


def _unusual(
    current: dict[str, int], rows: int, reference: dict[str, Any] | None, ref_rows: int
) -> dict[str, dict[str, Any]]:
    """Per unusual reason seen in either: its rate now and in the reference."""
    ref_counts = (reference or {}).get("unusual") or {}
    out: dict[str, dict[str, Any]] = {}
    for key in UNUSUAL.values():
        count, ref_count = current.get(key, 0), int(ref_counts.get(key, 0))
        if not count and not ref_count:
            continue
        out[key] = {
            "count": count,
            "rate": _rate(count, rows),
            "reference_count": ref_count,
            "reference_rate": _rate(ref_count, ref_rows),
            "reference_rows": ref_rows,
        }
    return out


def _psi_allowance(ref_psi: float | None, ref_rows: int, stats: _Stats, train_rows: int) -> float:
    """The PSI the reference rows themselves show against the training profile, scaled to the
    current sample's size (sampling noise shrinks as 1/n_train + 1/n), with three standard
    deviations of that noise on top (a PSI near chi-square/n with the bins' degrees of
    freedom). 0 without a calibration."""
    if not ref_psi or not ref_rows or not stats.rows:
        return 0.0
    noise = 1 / max(train_rows, 1)
    scale = max(1.0, (noise + 1 / stats.rows) / (noise + 1 / ref_rows))
    bins = len(stats.ref["counts"]) + (1 if stats.ref["type"] == CATEGORICAL else 0) + 1
    dof = max(bins - 1, 1)
    return float(ref_psi) * scale * (1 + Z_NOISE * math.sqrt(2 / dof))


def _significant_rise(count: int, rows: int, ref_count: int, ref_rows: int) -> bool:
    """Whether the rate count/rows is above ref_count/ref_rows by more than ``Z_NOISE``
    standard errors (a two-proportion test, pooled)."""
    if not rows:
        return False
    rate = count / rows
    ref_rate = ref_count / ref_rows if ref_rows else 0.0
    pooled = (count + ref_count) / (rows + ref_rows)
    se = math.sqrt(pooled * (1 - pooled) * (1 / rows + (1 / ref_rows if ref_rows else 0.0)))
    return rate - ref_rate > Z_NOISE * se


def _compare_column(stats: _Stats, *, tests: bool = True) -> dict[str, Any]:
    """PSI, missing rates and (with ``tests``) the KS or chi-square test of one column."""
    import numpy as np

    ref = stats.ref
    out: dict[str, Any] = {
        "type": ref["type"],
        "missing_reference": _rate(ref["missing"], ref["rows"]),
        "missing_current": _rate(stats.missing, stats.rows),
    }
    if stats.rows == 0:
        out.update(psi=None, test=None, statistic=None, pvalue=None, missing_change=None)
        return out
    out["missing_change"] = out["missing_current"] - out["missing_reference"]
    if ref["type"] == NUMERIC:
        ref_counts = np.asarray([*ref["counts"], ref["missing"]], dtype=float)
        cur_counts = np.asarray([*stats.counts, stats.missing], dtype=float)
        out["psi"] = psi(ref_counts, cur_counts)
        n_ref = ref["rows"] - ref["missing"]
        n_cur = stats.rows - stats.missing
        out["test"] = "ks"
        out["statistic"], out["pvalue"] = (
            _ks(np.asarray(ref["cdf_counts"], dtype=float), n_ref, stats.cdf_counts, n_cur)
            if tests
            else (None, None)
        )
        out["mean_reference"] = ref.get("mean")
        out["mean_current"] = stats.total / n_cur if n_cur else None
        edges = [f"{e:.4g}" for e in ref["edges"]]
        labels = ["all"]
        if edges:
            inner = [f"({a}, {b}]" for a, b in itertools.pairwise(edges)]
            labels = [f"<= {edges[0]}", *inner, f"> {edges[-1]}"]
        out["distribution"] = _distribution([*labels, "missing"], ref_counts, cur_counts)
    else:
        keys = list(ref["counts"])
        known = set(keys)
        other = sum(v for k, v in stats.categories.items() if k not in known)
        ref_counts = np.asarray([*ref["counts"].values(), ref["other"], ref["missing"]], float)
        cur_counts = np.asarray(
            [*(stats.categories.get(k, 0) for k in keys), other, stats.missing], float
        )
        out["psi"] = psi(ref_counts, cur_counts)
        out["test"] = "chi2"
        out["statistic"], out["pvalue"] = (
            _chi2(ref_counts[:-1], cur_counts[:-1]) if tests else (None, None)
        )
        out["unseen_categories"] = sorted(k for k in stats.categories if k not in known)[:20]
        out["distribution"] = _distribution([*keys, OTHER, "missing"], ref_counts, cur_counts)
    return out


def _distribution(labels: list[str], ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    """Shares per bin, reference and current, for reports."""
    return {
        "labels": labels,
        "reference": (ref / max(ref.sum(), 1)).tolist(),
        "current": (cur / max(cur.sum(), 1)).tolist(),
    }


def _column_alerts(
    label: str, result: dict[str, Any], stats: _Stats, thresholds: dict[str, Any]
) -> list[str]:
    alerts = []
    psi_now, allowance = result.get("psi"), result["psi_allowance"]
    if psi_now is not None and psi_now - allowance >= thresholds["psi"]:
        alerts.append(
            f"{label}: PSI {psi_now:.3f} >= {thresholds['psi']} over the reference's own "
            f"{allowance:.3f} (production.monitor.psi)"
        )
    limit = thresholds.get("pvalue")
    if limit is not None and result.get("pvalue") is not None and result["pvalue"] < limit:
        alerts.append(
            f"{label}: {result['test']} p-value {result['pvalue']:.2e} < {limit} "
            "(production.monitor.pvalue)"
        )
    change = result.get("missing_change")
    ref = stats.ref
    if change is not None and abs(change) >= thresholds["missing_rate"]:
        up = change > 0
        now, before = (stats.missing, ref["missing"]) if up else (ref["missing"], stats.missing)
        rows_now, rows_before = (stats.rows, ref["rows"]) if up else (ref["rows"], stats.rows)
        if _significant_rise(now, rows_now, before, rows_before):
            alerts.append(
                f"{label}: missing rate {result['missing_reference']:.1%} -> "
                f"{result['missing_current']:.1%} (change >= {thresholds['missing_rate']}, "
                "production.monitor.missing_rate)"
            )
    margin = thresholds["unusual_margin"]
    for key, found in result["unusual"].items():
        rise = found["rate"] - found["reference_rate"]
        found["alert"] = rise > margin and _significant_rise(
            found["count"], stats.rows, found["reference_count"], found["reference_rows"]
        )
        if found["alert"]:
            alerts.append(
                f"{label}: {key.replace('_', ' ')} in {found['rate']:.1%} of rows, "
                f"{found['reference_rate']:.1%} in the reference (rise > {margin:.1%}, "
                "production.monitor.unusual_margin)"
            )
    return alerts


def psi(reference: np.ndarray, current: np.ndarray) -> float | None:
    """Population stability index of two count vectors over the same bins."""
    import numpy as np

    if reference.sum() == 0 or current.sum() == 0:
        return None
    r = np.maximum(reference / reference.sum(), EPSILON)
    c = np.maximum(current / current.sum(), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def _ks(
    ref_cdf: np.ndarray, n_ref: int, cur_cdf: Any, n_cur: int
) -> tuple[float | None, float | None]:
    """Two-sample KS statistic on the reference's percentile grid, asymptotic p-value."""
    import numpy as np
    from scipy.stats import kstwobign

    if not n_ref or not n_cur or not len(ref_cdf):
        return None, None
    d = float(np.max(np.abs(ref_cdf / n_ref - np.asarray(cur_cdf, dtype=float) / n_cur)))
    en = math.sqrt(n_ref * n_cur / (n_ref + n_cur))
    return d, float(kstwobign.sf(d * en))


def _chi2(ref: np.ndarray, cur: np.ndarray) -> tuple[float | None, float | None]:
    """Chi-square test of homogeneity of two count vectors (empty categories left out)."""
    import numpy as np
    from scipy.stats import chi2_contingency

    if ref.sum() == 0 or cur.sum() == 0:
        return None, None
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]])
    if table.shape[1] < 2:
        return 0.0, 1.0
    stat, p, _, _ = chi2_contingency(table, correction=False)
    return float(stat), float(p)


def _bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (-inf, e0], (e0, e1], ..., (e_last, inf) of sorted values."""
    import numpy as np

    at_most = np.searchsorted(sorted_values, edges, side="right")  # values <= each edge
    return np.diff(np.concatenate(([0], at_most, [len(sorted_values)])))


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
