"""`pipespec diff`'s verdicts: better or worse by each metric's direction in
core/model_metrics (behaviour measures and training counts included)."""

from __future__ import annotations

import pytest

from pipespec.engine.diff import MetricChange


@pytest.mark.parametrize(
    ("file", "key", "old", "new", "verdict"),
    [
        ("metrics/behavior.json", "behavior.directional.older.violation_rate", 0.0, 0.27, "worse"),
        ("metrics/behavior.json", "behavior.slices.male.gap_accuracy", 0.05, 0.03, "better"),
        ("metrics/behavior.json", "behavior.slices.female.auc", 0.90, 0.93, "better"),
        ("metrics/behavior.json", "behavior.failed", 0, 2, "worse"),
        ("metrics/behavior.json", "behavior.slices.female.rows", 100, 120, ""),
        ("metrics/behavior.json", "behavior.overall.mean_prediction", 0.2, 0.3, ""),
        ("metrics/evaluate.json", "test.logloss", 0.40, 0.38, "better"),
        ("metrics/evaluate.json", "test.r2", 0.5, 0.5, "same"),
        ("metrics/train.json", "valid.binary_logloss", 0.3, 0.4, "worse"),
        ("metrics/train.json", "best_iteration", 30, 40, ""),
        ("metrics/gate.json", "gates_failed", 0, 1, ""),
        ("metrics/custom.json", "my_score", 1.0, 2.0, "better"),  # unknown: higher is better
        ("metrics/evaluate.json", "test.auc", None, 0.9, ""),
    ],
)
def test_verdict_follows_each_metric_s_direction(
    file: str, key: str, old: float, new: float, verdict: str
) -> None:
    assert MetricChange(file, key, old, new).verdict == verdict
