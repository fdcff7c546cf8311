"""A multiclass model's outputs are named after its class labels, the same in batch
prediction, evaluate's predictions, behaviour checks and the HTTP answer; trees are counted
one way (train and package agree). Data: Kaggle Titanic, predicting the port of embarkation
(C, Q, S) from the other columns."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from helpers import run_cli, shared

pytestmark = pytest.mark.slow


def test_multiclass_outputs_are_named_after_the_classes(new_project):
    from bundle_helpers import records, start_server

    root = new_project()
    raw = pd.read_csv(shared("titanic", "train.csv"))
    raw.to_csv(root / "raw.csv", index=False)
    (root / "configs" / "experiment" / "fare.yaml").write_text(
        "# @package _global_\nbehavior:\n  directional:\n    fare: {column: Fare, shift: 20, "
        "direction: up, output: p_S, tolerance: 1.0}\n",
        encoding="utf-8",
    )
    proc = run_cli(
        "run",
        "dataset=csv",
        "dataset.path=raw.csv",
        "dataset.target=Embarked",
        "dataset.task=multiclass",
        "dataset.drop=[PassengerId]",
        "model.num_boost_round=30",
        "experiment=fare",
        cwd=root,
    )
    rounds = re.search(r"(\d+) trees \((\d+) boosting rounds x 3 classes\)", proc.stderr)
    assert rounds, proc.stderr
    assert int(rounds.group(1)) == 3 * int(rounds.group(2))
    assert f"{rounds.group(1)} trees, profile of" in proc.stderr  # package: the same count

    out = root / "scored.csv"
    run_cli("predict", "--bundle", "models/bundle", "raw.csv", str(out), cwd=root)
    scored = pd.read_csv(out)
    assert [c for c in scored.columns if c.startswith("p_")] == ["p_C", "p_Q", "p_S"]
    evaluated = pd.read_parquet(root / "data" / "evaluate" / "predictions.parquet")
    assert {"p_C", "p_Q", "p_S"} <= set(evaluated.columns)
    report = json.loads((root / "reports" / "behavior" / "report.json").read_text())
    assert "the probability of class 'S' (p_S)" in json.dumps(report)

    server = start_server(root / "models" / "bundle", root)
    try:
        body = records(raw.drop(columns=["Embarked", "PassengerId"]).iloc[:3])
        answer = server.client.post("/predict", json=body)
        assert answer.status_code == 200, answer.text
        for got, (_, row) in zip(answer.json()["predictions"], scored.iloc[:3].iterrows(),
                                 strict=True):  # fmt: skip
            assert set(got["probabilities"]) == {"C", "Q", "S"}
            assert got["probabilities"]["S"] == pytest.approx(row["p_S"], rel=1e-12)
    finally:
        server.stop()
