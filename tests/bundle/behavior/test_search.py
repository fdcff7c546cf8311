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


def test_grouped_auc_is_model_metrics_auc_bit_for_bit() -> None:
    from pipespec.bundle.behavior.search import grouped_auc
    from pipespec.core.model_metrics import auc

    rng = np.random.default_rng(7)
    n = 30_000
    s = np.round(rng.random(n), 3)  # ties within and across groups
    y = (rng.random(n) < s).astype(float)
    group = rng.choice([0, 1, 2, 3, 4, 5, -1], size=n, p=[0.4, 0.2, 0.2, 0.1, 0.05, 0.03, 0.02])
    y[group == 4] = 1.0  # a group of one class: no AUC
    group[group == 5] = 6  # a gap among the group numbers
    order = np.argsort(-s, kind="stable")
    chosen = np.array([0, 1, 2, 3, 4, 6])  # group 0 holds more than 8,192 rows
    got = grouped_auc(y, s, order, group, chosen)
    expected = [auc(y[group == k], s[group == k]) for k in chosen]
    assert np.isnan(got[4])
    assert np.isnan(expected[4])
    assert [v for i, v in enumerate(got) if i != 4] == [v for i, v in enumerate(expected) if i != 4]
    assert grouped_auc(y, s, order, group, np.array([], dtype=np.int64)) == []
    tiny = np.array([0, 0, 1, 1, 1, 0])  # groups of one and two rows, each class
    assert grouped_auc(
        np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0]), np.array([0.9, 0.1, 0.5, 0.5, 0.2, 0.3]),
        np.argsort(-np.array([0.9, 0.1, 0.5, 0.5, 0.2, 0.3]), kind="stable"), tiny,
        np.array([0, 1]),
    ) == [1.0, auc(np.array([1.0, 0.0, 0.0]), np.array([0.5, 0.5, 0.2]))]  # fmt: skip


def test_the_search_scored_at_once_equals_each_combination_masked(run_spec, monkeypatch) -> None:
    from pipespec.bundle.behavior import search

    spec = {"search": {"enabled": True, "min_rows": 15, "top": 50}}
    at_once = run_spec(**spec)["search"]
    monkeypatch.setattr(search, "codes", lambda groups, rows: None)  # every mask, as before
    masked = run_spec(**spec)["search"]
    assert at_once == masked
    assert at_once["segments_tried"] > 50


def test_a_value_s_rows_are_those_equal_to_it() -> None:
    from types import SimpleNamespace

    import pandas as pd

    from pipespec.bundle.behavior.search import Search

    frame = pd.DataFrame({
        "text": pd.Series(["a", "b", None, "a", "b", "a"], dtype="str"),
        "mixed": pd.Series([1, "1", 1.0, None, "x", 1], dtype=object),
        "ints": pd.array([1, 2, None, 2, 1, 1], dtype="Int64"),
        "few": [0.5, float("nan"), 0.5, -0.0, 0.0, 0.5],
    })  # fmt: skip
    owner = SimpleNamespace(
        cfg=SimpleNamespace(bins=4, min_rows=1), labelled=SimpleNamespace(rows=frame)
    )
    for name in frame.columns:
        values = frame[name]
        groups = Search.column_groups(owner, name)  # type: ignore[arg-type]
        counts = values.astype("object").value_counts(dropna=False)
        assert [where for where, _ in groups] == [
            f"{name} is missing" if pd.isna(v) else f"{name} = {v}" for v in counts.index
        ]
        for (where, mask), value in zip(groups, counts.index, strict=True):
            expected = values.isna() if pd.isna(value) else (values == value).fillna(False)
            assert mask.tolist() == expected.tolist(), where
