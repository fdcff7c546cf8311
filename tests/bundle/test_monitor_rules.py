"""The calibrated alert rules of `profile.compare` on hand-made counts: malformed rows are
violations; an unusual rate alerts only above the reference's own rate by the margin and by
more than its sampling noise; PSI counts over the reference's own PSI."""

from __future__ import annotations

import numpy as np

from pipespec.bundle.inputs import MALFORMED, UNSEEN, WRONG_TYPE, Checked
from pipespec.bundle.profile import Summary, categorical_profile, compare

THRESHOLDS = {
    "psi": 0.2,
    "pvalue": None,
    "missing_rate": 0.1,
    "violation_rate": 0.05,
    "unusual_margin": 0.05,
    "prediction_psi": 0.2,
}


def _profile(unseen_in_reference: int, reference_rows: int = 1000) -> dict:
    plan = categorical_profile(np.asarray(["a"] * 500 + ["b"] * 500, dtype=object))
    return {
        "rows": 1000,
        "features": {"plan": plan},
        "prediction": {
            "type": "numeric",
            "rows": 1000,
            "missing": 0,
            "edges": [0.5],
            "counts": [500, 500],
            "cdf_x": [0.5],
            "cdf_counts": [500],
        },
        "calibration": {
            "source": "valid",
            "rows": reference_rows,
            "features": {
                "plan": {
                    "psi": 0.0,
                    "missing": 0,
                    "unusual": {"unseen_category": unseen_in_reference},
                }
            },
            "prediction": {"psi": 0.0},
        },
    }


def _report(profile: dict, n: int, unseen: int, wrong: int = 0) -> dict:
    values = np.asarray(["a", "b"] * (n // 2), dtype=object)
    problems = []
    if unseen:
        values[:unseen] = "z"
        problems.append(("plan", UNSEEN, np.arange(unseen), values[:unseen]))
    if wrong:
        problems.append(("plan", WRONG_TYPE, np.arange(n - wrong, n), values[:wrong]))
    refused = np.zeros(n, dtype=bool)
    refused[n - wrong :] = wrong > 0
    checked = Checked(
        work={"plan": values},
        rows=n,
        refused=refused,
        warned=np.zeros(n, dtype=bool),
        refuse=MALFORMED,
        problems=problems,
    )
    summary = Summary(profile, "binary", [0, 1])
    summary.add(checked, np.where(np.arange(n) % 2 == 0, 0.25, 0.75))
    return compare(summary, THRESHOLDS)


def _calibrated(unseen: int) -> dict:
    """A profile whose calibration has the PSI that reference rows with ``unseen`` show."""
    profile = _profile(unseen)
    own = _report(profile, 1000, unseen)
    profile["calibration"]["features"]["plan"]["psi"] = own["features"][0]["psi"]
    return profile


def test_unusual_rates_are_compared_with_the_reference() -> None:
    # 30% unseen in the reference: 32% now is usual, 40% is a rise beyond the 5% margin
    usual = _report(_calibrated(300), 1000, 320)
    assert usual["status"] == "ok", usual["alerts"]
    assert usual["violations"]["rows"] == 0
    found = usual["unusual"]["by_column"]["plan"]["unseen_category"]
    assert (found["rate"], found["reference_rate"], found["alert"]) == (0.32, 0.3, False)
    risen = _report(_calibrated(300), 1000, 400)
    assert risen["status"] == "drift"
    assert risen["alerts"][-1] == (
        "feature 'plan': unseen category in 40.0% of rows, 30.0% in the reference "
        "(rise > 5.0%, production.monitor.unusual_margin)"
    )


def test_a_rise_within_sampling_noise_does_not_alert() -> None:
    # 20 rows with 3 unseen (15%) against 0% in 50 reference rows: beyond the margin, but
    # not beyond three standard errors of so few rows
    report = _report(_profile(0, reference_rows=50), 20, 3)
    assert report["unusual"]["by_column"]["plan"]["unseen_category"]["alert"] is False


def test_malformed_rows_are_violations() -> None:
    report = _report(_calibrated(300), 1000, 300, wrong=100)
    assert report["violations"]["rows"] == 100
    assert report["violations"]["by_column"] == {"plan": {WRONG_TYPE: 100}}
    assert report["unusual"]["rows"] == 300
    assert "schema violations: 10.0% of rows malformed >= 5.0%" in report["alerts"][-1]
