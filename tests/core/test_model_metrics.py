"""core/model_metrics against scikit-learn (a dev dependency) on real LightGBM predictions of
the shared data, to 1e-12, and on the edge cases where a metric is undefined."""

from __future__ import annotations

import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as m
from tests.helpers import shared

from pipespec.core import model_metrics as mm

TOL = 1e-12


def _fit(x: pd.DataFrame, y: np.ndarray, params: dict) -> lgb.Booster:
    base = {"verbose": -1, "num_threads": 1, "seed": 1, "max_bin": 63}
    return lgb.train({**base, **params}, lgb.Dataset(x, label=y), num_boost_round=20)


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, np.ndarray]:
    """HIGGS rows: a model trained on binary.train, scored on binary.test."""
    path = shared("lightgbm_examples", "binary_classification")
    train = pd.read_csv(path / "binary.train", sep="\t", header=None)
    test = pd.read_csv(path / "binary.test", sep="\t", header=None)
    booster = _fit(train.iloc[:, 1:], train[0].to_numpy(), {"objective": "binary"})
    return test[0].to_numpy().astype(np.int64), booster.predict(test.iloc[:, 1:])


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    path = shared("lightgbm_examples", "multiclass_classification")
    train = pd.read_csv(path / "multiclass.train", sep="\t", header=None)
    test = pd.read_csv(path / "multiclass.test", sep="\t", header=None)
    params = {"objective": "multiclass", "num_class": 5}
    booster = _fit(train.iloc[:, 1:], train[0].to_numpy(), params)
    return test[0].to_numpy().astype(np.int64), booster.predict(test.iloc[:, 1:])


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(shared("california_housing", "housing.csv"))
    x = frame.drop(columns=["median_house_value", "ocean_proximity"])
    y = frame["median_house_value"].to_numpy(dtype=float)
    booster = _fit(x.iloc[:15000], y[:15000], {"objective": "regression"})
    return y[15000:], booster.predict(x.iloc[15000:])


def test_binary_metrics_match_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    for threshold in (0.5, 0.37):
        label = (p >= threshold).astype(int)
        expected = {
            "auc": m.roc_auc_score(y, p),
            "pr_auc": m.average_precision_score(y, p),
            "logloss": m.log_loss(y, y_proba=p, labels=[0, 1]),
            "brier": m.brier_score_loss(y, p),
            "accuracy": m.accuracy_score(y, label),
            "precision": m.precision_score(y, label, zero_division=0),
            "recall": m.recall_score(y, label, zero_division=0),
            "f1": m.f1_score(y, label, zero_division=0),
        }
        got = mm.task_metrics("binary", y, p, expected, threshold=threshold)
        assert got == pytest.approx(expected, abs=TOL, rel=0)
        assert got["auc"] > 0.7  # a real model


def test_curves_match_sklearn_with_ties(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    for scores in (p, np.round(p, 2)):  # rounded: many tied scores
        fpr, tpr, thr = mm.roc_curve(y, scores)
        efpr, etpr, ethr = m.roc_curve(y, scores)
        np.testing.assert_array_equal(fpr, efpr)
        np.testing.assert_array_equal(tpr, etpr)
        np.testing.assert_array_equal(thr, ethr)
        precision, recall, thr = mm.precision_recall_curve(y, scores)
        eprecision, erecall, ethr = m.precision_recall_curve(y, scores)
        np.testing.assert_array_equal(precision, eprecision)
        np.testing.assert_array_equal(recall, erecall)
        np.testing.assert_array_equal(thr, ethr)
        assert mm.auc(y, scores) == pytest.approx(m.roc_auc_score(y, scores), abs=TOL)


def test_multiclass_metrics_match_sklearn(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = multiclass
    label = p.argmax(axis=1)
    expected = {
        "logloss": m.log_loss(y, y_proba=p, labels=list(range(5))),
        "accuracy": m.accuracy_score(y, label),
        "macro_f1": m.f1_score(y, label, average="macro", zero_division=0),
    }
    assert mm.task_metrics("multiclass", y, p, expected) == pytest.approx(expected, abs=TOL)
    # a class neither true nor predicted in a subset is not averaged in (sklearn's macro)
    subset = (y != 4) & (label != 4)
    assert mm.macro_f1(y[subset], label[subset]) == pytest.approx(
        m.f1_score(y[subset], label[subset], average="macro", zero_division=0), abs=TOL
    )


def test_regression_metrics_match_sklearn(regression: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = regression
    expected = {
        "rmse": float(np.sqrt(m.mean_squared_error(y, p))),
        "mae": m.mean_absolute_error(y, p),
        "r2": m.r2_score(y, p),
        "mape": m.mean_absolute_percentage_error(y, p),
    }
    got = mm.task_metrics("regression", y, p, expected)
    assert got["rmse"] == pytest.approx(expected["rmse"], rel=TOL)  # dollars: relative
    assert got["mae"] == pytest.approx(expected["mae"], rel=TOL)
    assert got["r2"] == pytest.approx(expected["r2"], abs=TOL)
    assert got["mape"] == pytest.approx(expected["mape"], abs=TOL)
    with_zero = np.r_[0.0, y[:50]]
    assert mm.mape(with_zero, np.r_[1.0, p[:50]]) == pytest.approx(
        m.mean_absolute_percentage_error(with_zero, np.r_[1.0, p[:50]]), rel=TOL
    )


def test_undefined_metrics_are_nan_or_zero_division() -> None:
    y = np.array([1, 1, 1])
    assert np.isnan(mm.auc(y, np.array([0.2, 0.4, 0.9])))
    assert np.isnan(mm.average_precision(1 - y, np.array([0.2, 0.4, 0.9])))
    assert np.isnan(mm.r2(np.ones(4), np.arange(4.0)))
    none_predicted = np.zeros(3, dtype=int)
    assert np.isnan(mm.precision(y, none_predicted))
    assert mm.precision(y, none_predicted, zero_division=0.0) == 0.0
    assert mm.f1(1 - y, none_predicted, zero_division=0.0) == 0.0
    # probabilities of exactly 0 and 1 are clipped as sklearn clips them
    y2, p2 = np.array([0, 1, 1]), np.array([1.0, 0.0, 1.0])
    assert mm.log_loss(y2, p2) == pytest.approx(m.log_loss(y2, y_proba=p2), abs=TOL)


@pytest.mark.parametrize(
    ("name", "lower"),
    [("logloss", True), ("valid.binary_logloss", True), ("rmse", True), ("l2", True),
     ("auc", False), ("new_customers_auc", False), ("r2", False), ("f1", False)],
)  # fmt: skip
def test_direction(name: str, lower: bool) -> None:
    assert mm.lower_is_better(name) is lower
    assert mm.direction(name) == (mm.LOWER if lower else mm.HIGHER)


def test_every_metric_has_a_direction_and_gaps_follow_it() -> None:
    for names in (*mm.EVALUATION.values(), *mm.BEHAVIOR.values()):
        assert all(mm.direction(name) is not None for name in names), names
    assert mm.direction("mean_prediction") == mm.NEITHER
    assert mm.direction("violation_rate") == mm.LOWER  # a behaviour measure, by exact name
    assert mm.direction("new_customers_rows") is None  # exact names only for those
    assert mm.direction("gap_auc") == mm.LOWER
    assert mm.gap_of("auc", 0.9, 0.8) == pytest.approx(0.1)
    assert mm.gap_of("rmse", 2.0, 2.5) == pytest.approx(0.5)
    assert mm.gap_of("mean_prediction", 0.3, 0.2) == pytest.approx(0.1)


def test_scoring_imports_no_sklearn() -> None:
    """Evaluation's and the behaviour checks' metrics run without scikit-learn."""
    code = (
        "import sys, numpy as np\n"
        "from pipespec.stages.evaluate import score\n"
        "import pipespec.bundle.behavior\n"
        "y = np.array([0, 1, 1, 0]); p = np.array([0.1, 0.8, 0.6, 0.3])\n"
        "print(score('binary', y, p, 0.5)['auc'])\n"
        "assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.0"
