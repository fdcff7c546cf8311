"""A few rows through LightGBM's single-row C API (``bundle/booster.py``) give exactly what
``Booster.predict`` gives, for each kind of model, and a busy predictor says so."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from pipespec.bundle.booster import ROWS, RowPredictor, row_predictor


def _model(objective: str, **params: object) -> lgb.Booster:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 4] = rng.integers(0, 4, size=len(x))  # a categorical column: codes
    y = {
        "binary": (np.nan_to_num(x[:, 0]) > 0).astype(int),
        "multiclass": np.digitize(np.nan_to_num(x[:, 1]), [-0.5, 0.5]),
        "regression": np.nan_to_num(x[:, 2]) * 3.0,
    }[objective]
    data = lgb.Dataset(x, y, categorical_feature=[4] if objective == "binary" else "auto")
    settings = {"objective": objective, "verbose": -1, "num_leaves": 7, **params}
    return lgb.train(settings, data, num_boost_round=15)


@pytest.mark.parametrize(
    ("objective", "params"),
    [("binary", {}), ("multiclass", {"num_class": 3}), ("regression", {})],
)
def test_a_few_rows_score_bit_for_bit_as_booster_predict(objective: str, params: dict) -> None:
    booster = _model(objective, **params)
    fast = row_predictor(booster)
    assert fast is not None
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(ROWS, 5)) * 2
    rows[rng.random(rows.shape) < 0.2] = np.nan
    rows[:, 4] = rng.integers(0, 6, size=ROWS)  # codes, some unseen in training
    for n in (1, 2, ROWS):
        features = np.asfortranarray(rows[:n])  # the transforms' matrix is column-major
        ours = fast.predict(features)
        theirs = booster.predict(features, num_threads=1)
        assert ours is not None
        assert ours.shape == theirs.shape
        assert ours.tobytes() == theirs.tobytes()
    # the answer is the caller's: the predictor's buffers are reused by the next call
    first = fast.predict(np.asfortranarray(rows[:1]))
    kept = first.copy()
    fast.predict(np.asfortranarray(rows[1:2]))
    assert first.tobytes() == kept.tobytes()


def test_a_busy_predictor_answers_none_and_a_wrong_width_is_refused() -> None:
    fast = RowPredictor(_model("regression"))
    assert fast._lock.acquire()
    try:
        assert fast.predict(np.zeros((1, 5))) is None  # the caller uses booster.predict
    finally:
        fast._lock.release()
    with pytest.raises(ValueError, match=f"at most {ROWS} rows of 5 features, got \\(1, 4\\)"):
        fast.predict(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=f"got \\({ROWS + 1}, 5\\)"):
        fast.predict(np.zeros((ROWS + 1, 5)))
