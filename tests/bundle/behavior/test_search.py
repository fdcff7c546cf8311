"""The weakest-segment search: deterministic, ranked by gap, and its counts of every
combination's rows at once the same as masking each combination."""

from __future__ import annotations

import numpy as np

from pipespec.bundle.behavior.search import codes


def test_search_is_deterministic_and_ranked_by_gap(run_spec, check_of) -> None:
    spec = {"search": {"enabled": True, "min_rows": 20, "top": 3, "max_gap": 0.5}}
    first = run_spec(**spec)
    assert first == run_spec(**spec)
    search = first["search"]
    assert search["metric"] == "auc"
    assert search["overall"] == first["overall"]["auc"]
    assert len(search["weakest"]) == 3
    assert search["segments_tried"] >= 3
    gaps = [s["gap"] for s in search["weakest"]]
    assert gaps == sorted(gaps, reverse=True)
    assert search["worst_gap"] == gaps[0]
    assert all(s["rows"] >= 20 for s in search["weakest"])
    top = check_of(first, "search", "weakest[0]")
    assert (top["value"], top["bound"]) == (gaps[0], 0.5)


def test_codes_number_each_row_s_group_or_refuse_overlapping_groups() -> None:
    a, b = np.array([True, False, False, True]), np.array([False, True, False, False])
    assert codes([("a", a), ("b", b)], 4).tolist() == [0, 1, -1, 0]
    assert codes([("a", a), ("all", np.ones(4, dtype=bool))], 4) is None
