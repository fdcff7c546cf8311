"""Model metrics in numpy: the one implementation that evaluation, the behaviour checks and
``pipespec diff`` share, so nothing imports scikit-learn to score (and a serving image does
not need it).

Every function follows scikit-learn's definition (``sklearn.metrics`` 1.9: the same sorting
into thresholds, the same clipping of probabilities, the same trapezoidal area); the test
suite checks each against scikit-learn to 1e-12 on real predictions. A metric that is
undefined on its input (AUC with one class, R² of a constant target) is ``nan``; callers
decide whether to drop it or to report it as null.

Each metric's direction lives here too (:func:`direction`): what a slice's gap and a diff's
better/worse verdict read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

# Each metric's direction: which way is better. A name matches a metric exactly or by its
# last "_<metric>" (LightGBM's "binary_logloss", "valid_l2", a behaviour slice's
# "new_customers_rmse").
HIGHER, LOWER, NEITHER = "higher", "lower", "neither"
DIRECTION = {
    "auc": HIGHER,
    "pr_auc": HIGHER,
    "accuracy": HIGHER,
    "precision": HIGHER,
    "recall": HIGHER,
    "f1": HIGHER,
    "macro_f1": HIGHER,
    "r2": HIGHER,
    "logloss": LOWER,
    "brier": LOWER,
    "rmse": LOWER,
    "mae": LOWER,
    "mape": LOWER,
    # LightGBM's names for its evaluation results (the train stage's metrics)
    "l1": LOWER,
    "l2": LOWER,
    "error": LOWER,
    "multi_error": LOWER,
    "mean_prediction": NEITHER,  # a shift either way: a gap in it is the distance
}
# The other numbers of the metrics files, matched by exact name: the behaviour report's
# measures of its checks, and counts and settings that are not scores.
MEASURES = {
    "violation_rate": LOWER,
    "violations": LOWER,
    "failure_rate": LOWER,
    "failed": LOWER,
    "max_change": LOWER,
    "worst_gap": LOWER,
    "refused_rows": LOWER,
    **dict.fromkeys(
        (
            "rows",
            "total",
            "checks",
            "derived",
            "shift",
            "segments_tried",
            "best_iteration",
            "train_rows",
            "threshold",
        ),
        NEITHER,
    ),
}
PREFIXES = {"gap_": LOWER, "gates_": NEITHER}  # a slice's gap_<metric>; the gate's counts

# The metrics each task reports: evaluation's metrics file, and the behaviour checks (the
# first of these is the behaviour search's default).
EVALUATION = {
    "binary": ("auc", "pr_auc", "logloss", "brier", "accuracy", "precision", "recall", "f1"),
    "multiclass": ("logloss", "accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
BEHAVIOR = {
    "binary": ("auc", "accuracy", "logloss", "precision", "recall", "f1", "mean_prediction"),
    "multiclass": ("accuracy", "logloss", "macro_f1"),
    "regression": ("rmse", "mae", "r2", "mean_prediction"),
}

_EPS = float(np.finfo(np.float64).eps)
_NAN = float("nan")


def direction(name: str) -> str | None:
    """HIGHER, LOWER or NEITHER: which way metric ``name`` (its last dotted component) is
    better; None for a name this module does not know."""
    name = name.rsplit(".", 1)[-1].lower()
    if name in MEASURES:
        return MEASURES[name]
    for prefix, way in PREFIXES.items():
        if name.startswith(prefix):
            return way
    if name in DIRECTION:
        return DIRECTION[name]
    ends = [m for m in DIRECTION if name.endswith("_" + m)]
    return DIRECTION[max(ends, key=len)] if ends else None


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric ``name`` is better."""
    return direction(name) == LOWER


def gap_of(metric: str, overall: float, value: float) -> float:
    """How much worse ``value`` (on some rows) is than ``overall`` (on all rows), in the
    metric's direction; negative: better. NEITHER: the distance either way."""
    way = direction(metric)
    if way == NEITHER:
        return abs(value - overall)
    return value - overall if way == LOWER else overall - value


# --- binary scores --------------------------------------------------------------------------


def _thresholds(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positives at each distinct score, highest first (sklearn's
    ``confusion_matrix_at_thresholds``). Written with slices rather than ``np.diff`` and
    ``np.r_``, the same arithmetic with less overhead: the behaviour search scores about a
    thousand segments a run."""
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    idx = np.concatenate((np.flatnonzero(s[1:] - s[:-1]), [len(y) - 1]))
    tps = np.cumsum(y, dtype=np.float64)[idx]
    fps = 1 + idx.astype(np.float64) - tps
    return fps, tps, s[idx]


def roc_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates and their thresholds (``sklearn.metrics.roc_curve``,
    collinear points dropped); labels ``y`` in {0, 1}."""
    fps, tps, thresholds = _thresholds(_binary(y), np.asarray(s, dtype=np.float64))
    if len(fps) > 2:  # a point is kept where the second difference of fps or tps is not 0
        dfps, dtps = fps[1:] - fps[:-1], tps[1:] - tps[:-1]
        keep = np.ones(len(fps), dtype=bool)
        keep[1:-1] = np.logical_or(dfps[1:] - dfps[:-1], dtps[1:] - dtps[:-1])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps = np.concatenate(([0.0], fps)), np.concatenate(([0.0], tps))
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, np.concatenate(([np.inf], thresholds))


def precision_recall_curve(
    y: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall (decreasing) and the thresholds, lowest first
    (``sklearn.metrics.precision_recall_curve``)."""
    fps, tps, thresholds = _thresholds(_binary(y), np.asarray(s, dtype=np.float64))
    ps = tps + fps
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(ps != 0, tps / ps, 0.0)
    recall = np.ones(tps.shape) if tps[-1] == 0 else tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve; nan unless both classes occur."""
    y = _binary(y)
    if not 0 < int(y.sum()) < len(y):
        return _NAN
    fpr, tpr, _ = roc_curve(y, s)
    return float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0).sum())  # np.trapezoid


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision, the step integral of the precision-recall curve."""
    y = _binary(y)
    if not 0 < int(y.sum()) < len(y):
        return _NAN
    precision, recall, _ = precision_recall_curve(y, s)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between the positive-class probability and the label."""
    y = _binary(y).astype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    return float(np.mean(((1 - y) - (1 - p)) ** 2 + (y - p) ** 2) * 0.5)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood; ``p`` is the positive-class probability (binary) or a
    matrix of class probabilities with labels ``y`` in 0..k-1. Probabilities are clipped to
    [eps, 1 - eps] as scikit-learn does."""
    p = np.asarray(p, dtype=np.float64)
    yi = np.asarray(y).astype(np.int64)
    if p.ndim == 1:
        p = np.column_stack([1 - p, p])
    chosen = np.clip(p, _EPS, 1 - _EPS)[np.arange(len(yi)), yi]
    return float(np.mean(-np.log(chosen)))


def accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    """Share of rows whose predicted label is the true one."""
    return float(np.mean(np.asarray(y) == np.asarray(predicted)))


def _counts(y: np.ndarray, label: np.ndarray) -> tuple[float, float, float]:
    y, label = _binary(y).astype(bool), _binary(label).astype(bool)
    tp = float(np.count_nonzero(y & label))
    return tp, float(np.count_nonzero(label)) - tp, float(np.count_nonzero(y)) - tp


def precision(y: np.ndarray, label: np.ndarray, zero_division: float = _NAN) -> float:
    """Positive predictive value; ``zero_division`` when nothing is predicted positive."""
    tp, fp, _ = _counts(y, label)
    return tp / (tp + fp) if tp + fp else zero_division


def recall(y: np.ndarray, label: np.ndarray, zero_division: float = _NAN) -> float:
    """True positive rate; ``zero_division`` when no row is positive."""
    tp, _, fn = _counts(y, label)
    return tp / (tp + fn) if tp + fn else zero_division


def f1(y: np.ndarray, label: np.ndarray, zero_division: float = _NAN) -> float:
    """Harmonic mean of precision and recall."""
    tp, fp, fn = _counts(y, label)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else zero_division


def macro_f1(y: np.ndarray, predicted: np.ndarray, zero_division: float = 0.0) -> float:
    """Unweighted mean of each class's F1, over the classes that occur in ``y`` or in
    ``predicted`` (scikit-learn's ``average="macro"``)."""
    y, predicted = np.asarray(y).astype(np.int64), np.asarray(predicted).astype(np.int64)
    classes = np.union1d(y, predicted)
    scores = []
    for c in classes:
        truth, guess = y == c, predicted == c
        tp = float(np.count_nonzero(truth & guess))
        denominator = float(np.count_nonzero(truth) + np.count_nonzero(guess))
        scores.append(2 * tp / denominator if denominator else zero_division)
    return float(np.mean(scores)) if scores else _NAN


# --- regression -----------------------------------------------------------------------------


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    """Root mean squared error."""
    err = np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.sqrt(np.mean(err**2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    """Mean absolute error."""
    err = np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.mean(np.abs(err)))


def mape(y: np.ndarray, p: np.ndarray) -> float:
    """Mean absolute percentage error (a fraction, not %); the truth's magnitude is floored
    at machine epsilon as scikit-learn does."""
    y = np.asarray(y, dtype=np.float64)
    err = np.abs(np.asarray(p, dtype=np.float64) - y)
    return float(np.mean(err / np.maximum(np.abs(y), _EPS)))


def r2(y: np.ndarray, p: np.ndarray) -> float:
    """Coefficient of determination; nan for a constant target."""
    y = np.asarray(y, dtype=np.float64)
    residual = float(np.sum((y - np.asarray(p, dtype=np.float64)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    return 1 - residual / total if total else _NAN


# --- by task --------------------------------------------------------------------------------


def task_metrics(
    task: str,
    y: np.ndarray,
    scores: np.ndarray,
    names: Iterable[str],
    *,
    threshold: float = 0.5,
    zero_division: float = _NAN,
) -> dict[str, float]:
    """Metrics ``names`` of ``task`` on labels ``y`` (class codes for classification) and
    ``scores`` (positive-class probability, class-probability matrix, or predicted value);
    nan where one is undefined. Each metric is computed only when asked for."""
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    calc: dict[str, Callable[[], float]]
    if task == "binary":
        label = (s >= threshold).astype(np.int64)
        z = zero_division
        calc = {
            "auc": lambda: auc(y, s),
            "pr_auc": lambda: average_precision(y, s),
            "logloss": lambda: log_loss(y, s),
            "brier": lambda: brier(y, s),
            "accuracy": lambda: accuracy(_binary(y), label),
            "precision": lambda: precision(y, label, z),
            "recall": lambda: recall(y, label, z),
            "f1": lambda: f1(y, label, z),
            "mean_prediction": lambda: float(np.mean(s)),
        }
    elif task == "multiclass":
        predicted = s.argmax(axis=1)
        calc = {
            "logloss": lambda: log_loss(y, s),
            "accuracy": lambda: accuracy(y.astype(np.int64), predicted),
            "macro_f1": lambda: macro_f1(y, predicted),
        }
    else:
        calc = {
            "rmse": lambda: rmse(y, s),
            "mae": lambda: mae(y, s),
            "r2": lambda: r2(y, s),
            "mape": lambda: mape(y, s),
            "mean_prediction": lambda: float(np.mean(s)),
        }
    return {name: calc[name]() for name in names}


def _binary(y: np.ndarray) -> np.ndarray:
    return (np.asarray(y) == 1).astype(np.int64)
