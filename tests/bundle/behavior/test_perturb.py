"""Perturbations scored together: only the changed rows, every perturbation in one batch."""

from __future__ import annotations

from pipespec.bundle import behavior
from pipespec.bundle.behavior.perturb import filled, like, perturbed
from pipespec.bundle.behavior.rows import Rows


def test_perturbations_scored_together_equal_each_copy_predicted_whole(checked) -> None:
    """`perturbed` scores only the rows a perturbation changed, all perturbations in one
    batch: its predictions are exactly those of each perturbed copy predicted whole,
    including a column of another type (integers become nullable), a value that refuses
    every row (text in a numeric column), and one that changes nothing."""
    import numpy as np
    import pandas as pd

    bundle, frame = checked
    frame = frame.iloc[:800].reset_index(drop=True)
    cfg = behavior.spec_from({"name": "t"}, where="test")
    report = behavior.Report(bundle={}, data={"source": "t"}, task=bundle.task, seed=0)
    rows = Rows(bundle, frame, cfg, report)
    tenure = frame["tenure_months"]
    changes = [
        ("region", filled(frame["region"], "north")),
        ("tenure_months", like(tenure.to_numpy(dtype=float) + 12, tenure)),
        ("support_calls", pd.Series(["oops"] * len(frame), dtype=object)),
        ("contract", frame["contract"].copy()),
    ]
    got = perturbed(rows, changes)
    for (column, values), new in zip(changes, got, strict=True):
        whole = frame.copy()
        whole[column] = values
        expected = rows.predict(whole)
        pd.testing.assert_frame_equal(new, expected, check_exact=True)
    assert got[2].empty  # text where a number must be: every row refused
    assert np.array_equal(got[3].to_numpy(), rows.base.to_numpy())  # nothing changed
