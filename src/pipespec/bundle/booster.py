"""A few rows through LightGBM's single-row C API, set up once per bundle.

``Booster.predict`` builds a new predictor for every call: its Python wrapper converts the
parameters, and LightGBM's ``LGBM_BoosterPredictForMat`` makes a ``Predictor`` (with a
buffer per thread) before it walks the trees, and frees it after. For one record that set-up
is about 90% of the call (about 70 of 80 microseconds on the example model). LightGBM's own
answer is the "fast" single-row API: ``LGBM_BoosterPredictForMatSingleRowFastInit`` makes the
predictor once (a ``FastConfig``), and ``LGBM_BoosterPredictForMatSingleRowFast`` predicts one
row with it. It is the same predictor code on the same trees, so the numbers are those of
``Booster.predict``, bit for bit (``tests/bundle/test_booster.py``).

``RowPredictor.predict`` is used by ``Bundle.score`` for up to ``ROWS`` rows; a batch goes to
``Booster.predict``, which spreads rows over threads. A ``FastConfig`` holds one row's
buffers, so one thread at a time uses it: a call that finds it busy answers None and the
caller falls back to ``Booster.predict``. The rows and scores pass through the predictor's
own arrays, their addresses taken once: over a socket, where a server's caches are cold
between requests, each numpy call of a one-record path costs several times what it costs
in a loop (``bench/http.py``), and a contiguous copy, a fresh output and two ``ctypes``
addresses per call were four of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lightgbm as lgb
    import numpy as np

ROWS = 32  # up to this many rows, one by one through the fast API beats one batch call
_NORMAL = 0  # C_API_PREDICT_NORMAL: what Booster.predict returns by default
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class RowPredictor:
    """``booster.predict(features, num_threads=1)`` for a few rows, without its per-call
    set-up. ``available()`` says whether this LightGBM offers the API (else None is made)."""

    def __init__(self, booster: lgb.Booster) -> None:
        from lightgbm import basic

        self._lib = basic._LIB
        self._check = basic._safe_call
        self._booster = booster  # the handle lives as long as the booster
        self.columns = booster.num_feature()
        self.outputs = booster.num_model_per_iteration()
        # Booster.predict's own choice: start at 0, up to the best iteration (-1: all)
        self._config = ctypes.c_void_p()
        self._check(
            self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(booster.best_iteration),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self.columns),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._predict_row = self._lib.LGBM_BoosterPredictForMatSingleRowFast
        self._length = ctypes.c_int64()
        self._length_ref = ctypes.byref(self._length)
        self._lock = threading.Lock()
        # the rows and the scores go through buffers of the predictor's own, whose addresses
        # are taken once: numpy's ``ctypes`` attribute, a contiguous copy and a fresh output
        # array per call cost more than LightGBM's walk of the trees for one row
        import numpy as np

        self._rows = np.zeros((ROWS, self.columns), dtype=np.float64)
        self._scores = np.zeros((ROWS, self.outputs), dtype=np.float64)
        rows_at, scores_at = self._rows.ctypes.data, self._scores.ctypes.data
        self._row_at = [ctypes.c_void_p(rows_at + i * self.columns * 8) for i in range(ROWS)]
        self._score_at = [ctypes.c_void_p(scores_at + i * self.outputs * 8) for i in range(ROWS)]

    @staticmethod
    def available() -> bool:
        try:
            from lightgbm import basic

            lib = basic._LIB
            return all(
                hasattr(lib, name)
                for name in (
                    "LGBM_BoosterPredictForMatSingleRowFastInit",
                    "LGBM_BoosterPredictForMatSingleRowFast",
                    "LGBM_FastConfigFree",
                )
            )
        except (ImportError, AttributeError):
            return False

    def predict(self, features: np.ndarray) -> np.ndarray | None:
        """The scores of ``features`` (rows x the model's columns, float64) in
        ``Booster.predict``'s shape, or None when another thread is using the predictor."""
        shape = features.shape
        if len(shape) != 2 or shape[1] != self.columns or shape[0] > ROWS:
            raise ValueError(
                f"expected at most {ROWS} rows of {self.columns} features, got {shape}"
            )
        n = shape[0]
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._rows[:n] = features  # float64, row by row, as LightGBM reads them
            for i in range(n):
                self._check(
                    self._predict_row(
                        self._config, self._row_at[i], self._length_ref, self._score_at[i]
                    )
                )
            # a copy: the buffer is the next call's
            scores = self._scores[:n, 0].copy() if self.outputs == 1 else self._scores[:n].copy()
        finally:
            self._lock.release()
        return scores

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            with contextlib.suppress(Exception):  # at interpreter shutdown, nothing to free
                self._lib.LGBM_FastConfigFree(config)
            config.value = None


def row_predictor(booster: lgb.Booster) -> Any:
    """A ``RowPredictor`` for ``booster``, or None when this LightGBM lacks the API."""
    return RowPredictor(booster) if RowPredictor.available() else None
