"""The drift profile describes a seeded sample of ``PROFILE_ROWS`` training rows (issue 23):
at that size the reference's own sampling noise is far below every alert, and a real shift
is still found. Pure numpy on the profile's own functions: no model, no pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipespec.bundle.assemble import CALIBRATION_ROWS, PROFILE_ROWS
from pipespec.bundle.profile import (
    _compare_column,
    _psi_allowance,
    _Stats,
    categorical_profile,
    numeric_profile,
)

PSI_ALERT = 0.2  # production.monitor.psi's default (core/config.py)
BINS = 10  # production.profile_bins' default


def _numeric(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    """A skewed column with 10% missing values."""
    values = rng.lognormal(mean=shift, sigma=1.0, size=n)
    values[rng.random(n) < 0.1] = np.nan
    return values


def _categorical(rng: np.random.Generator, n: int) -> np.ndarray:
    """A long-tailed column: 1,000 categories (Zipf-like), so the profile keeps the top 200
    and counts the rest together."""
    weights = 1 / np.arange(1, 1001) ** 1.1
    keys = rng.choice(1000, size=n, p=weights / weights.sum())
    return np.asarray([f"k{k}" for k in keys], dtype=object)


def _compared(ref: dict[str, Any], current: np.ndarray) -> dict[str, Any]:
    stats = _Stats(ref)
    stats.add(current)
    return _compare_column(stats)


def test_the_profile_sample_is_the_calibration_s_size() -> None:
    assert PROFILE_ROWS == CALIBRATION_ROWS == 50_000


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_two_samples_of_the_same_data_differ_far_below_the_alert(kind: str) -> None:
    """PSI between the profile of one PROFILE_ROWS sample and another sample of the same
    population, at the calibration's size and at 1,000 rows, stays a small fraction of the
    alert threshold, and the allowance the calibration adds at its own size is a small part
    of the threshold (at 1,000 rows the allowance is the current sample's own noise, which a
    larger profile would not reduce: it scales as 1/n_profile + 1/n_current)."""
    rng = np.random.default_rng(23)
    draw = _numeric if kind == "numeric" else _categorical
    ref = (
        numeric_profile(draw(rng, PROFILE_ROWS), BINS)
        if kind == "numeric"
        else categorical_profile(draw(rng, PROFILE_ROWS))
    )
    assert ref["rows"] == PROFILE_ROWS
    held = _Stats(ref)
    held.add(draw(rng, CALIBRATION_ROWS))  # what the calibration measures on held-out rows
    held_psi = _compare_column(held, tests=False)["psi"]
    # 10 bins: about (k - 1) (1/n_ref + 1/n) = 0.0004; 201 categories: about 0.008
    assert held_psi < (0.002 if kind == "numeric" else 0.02)
    for rows in (CALIBRATION_ROWS, 1_000):
        stats = _Stats(ref)
        stats.add(draw(rng, rows))
        result = _compare_column(stats)
        allowance = _psi_allowance(held_psi, CALIBRATION_ROWS, stats, PROFILE_ROWS)
        assert result["psi"] - allowance < PSI_ALERT / 4, (rows, result["psi"], allowance)
        if rows == CALIBRATION_ROWS:
            assert allowance < PSI_ALERT / 4


def test_a_real_shift_is_still_found_on_the_sample() -> None:
    """A shift of a tenth of a standard deviation (on the log scale) in 5,000 current rows:
    the KS test on the sample's CDF grid rejects it, and a shift of half a standard
    deviation passes the PSI threshold."""
    rng = np.random.default_rng(5)
    ref = numeric_profile(_numeric(rng, PROFILE_ROWS), BINS)
    small = _compared(ref, _numeric(rng, 5_000, shift=0.1))
    assert small["pvalue"] < 1e-6
    large = _compared(ref, _numeric(rng, 5_000, shift=0.5))
    assert large["psi"] > PSI_ALERT
    same = _compared(ref, _numeric(rng, 5_000))
    assert same["pvalue"] > 1e-3
    assert same["psi"] < 0.01


@pytest.mark.parametrize(
    ("count", "rows", "seed"), [(700_000, 50_000, 0), (1_001, 1_000, 7), (10, 3, 2)]
)
def test_the_sample_s_rows_are_those_pandas_draws(count: int, rows: int, seed: int) -> None:
    """``sample_positions`` (the profile's and the calibration's rows, drawn without a
    frame) are the rows ``DataFrame.sample(n=rows, random_state=seed)`` takes."""
    import pandas as pd

    from pipespec.bundle.assemble import sample_positions

    frame = pd.DataFrame({"x": np.arange(count)})
    drawn = frame.sample(n=rows, random_state=seed).sort_index()
    assert sample_positions(count, rows, seed).tolist() == drawn.index.tolist()
