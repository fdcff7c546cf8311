"""What the distributed trainers share (``stages.distributed``), without a cluster: the
validation curve reduced from the parts and the cut where LightGBM's own early stopping stops,
the class factors counted part by part, and the model text without network settings."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from test_training import context, tables

from pipespec.stages import cluster, distributed
from pipespec.stages.parquet import part_files, read_table
from pipespec.stages.training import class_factors, job


def test_best_iteration_matches_early_stopping() -> None:
    curve = np.array([5.0, 4.0, 3.0, 3.5, 3.1, 3.2, 2.9, 3.0, 3.0, 3.0, 3.0])
    assert distributed.best_iteration(curve, 3) == 3  # iteration 3 (1-based), not beaten in 3
    assert distributed.best_iteration(curve, 5) == 7  # a longer patience reaches the later one
    assert distributed.best_iteration(np.array([1.0, 2.0]), 10) == 1


def test_model_text_loses_only_network_settings() -> None:
    text = "tree\n[machines: 127.0.0.1:4321,127.0.0.1:9876]\n[local_listen_port: 4321]\n[seed: 1]\n"
    expected = "tree\n[machines: ]\n[local_listen_port: ]\n[seed: 1]\n"
    assert distributed.without_network(text) == expected


@pytest.mark.parametrize("weighted", [False, True])
def test_the_cut_is_where_lightgbm_stops_and_the_score_its_own(
    tmp_path: Path, weighted: bool
) -> None:
    """All rounds trained, then the curve from the parts: the iteration and the validation
    score are those of LightGBM's early stopping on the same data."""
    tables(tmp_path)
    ctx = context(tmp_path, weight="w" if weighted else None, model={"num_boost_round": 60})
    work = job(ctx, threads=1)
    frames = {name: read_table(ctx.input(name))[0] for name in ("train", "valid")}

    def dataset(name: str, ref: lgb.Dataset | None = None) -> lgb.Dataset:
        frame = frames[name]
        weight = frame["w"] if weighted else None
        return lgb.Dataset(frame[work.features], label=frame["y"], weight=weight, reference=ref,
                           categorical_feature=work.categorical)  # fmt: skip

    full = lgb.train(work.params, dataset("train"), num_boost_round=60)
    best, scores = distributed.early_stopping(cluster.Local().map, full, ctx, work, where="here")
    train = dataset("train")
    stopped = lgb.train(
        work.params, train, num_boost_round=60, valid_sets=[dataset("valid", train)],
        valid_names=["valid"], callbacks=[lgb.early_stopping(5, verbose=False)],
    )  # fmt: skip
    assert 1 < best < 60
    assert best == stopped.best_iteration
    expected = stopped.best_score["valid"]["binary_logloss"]
    # LightGBM keeps weights as float32, the curve as float64
    assert scores["valid"][best - 1] == pytest.approx(expected, rel=1e-7 if weighted else 1e-12)

    distributed.write(ctx, work, full, best, scores)
    metrics = json.loads(ctx.output("metrics").read_text())
    score = round(float(scores["valid"][best - 1]), 6)
    assert metrics == {"train_rows": 600, "best_iteration": best, "valid_binary_logloss": score}
    assert lgb.Booster(model_file=ctx.output("model")).current_iteration() == best


def test_a_loss_of_the_users_keeps_every_round(tmp_path: Path, capsys) -> None:
    tables(tmp_path)
    ctx = context(tmp_path, model={"objective": "cross_entropy", "num_boost_round": 8})
    work = job(ctx, threads=1)
    frame = read_table(ctx.input("train"))[0]
    booster = lgb.train(work.params, lgb.Dataset(frame[work.features], label=frame["y"]), 8)
    kept = distributed.early_stopping(cluster.Local().map, booster, ctx, work, where="Dask")
    assert kept == (8, {})
    note = "note: no validation curve for metric 'binary_logloss' under Dask: all rounds kept"
    assert note in capsys.readouterr().err


def test_class_factors_counted_part_by_part(tmp_path: Path) -> None:
    tables(tmp_path)
    work = job(context(tmp_path, model={"class_weight": "balanced"}), threads=1)
    files = part_files(tmp_path / "train.parquet")
    labels = read_table(files[0])[0]["y"].to_numpy()
    expected = class_factors("balanced", work.classes, np.bincount(labels, minlength=2))
    assert distributed.factors(cluster.Local().map, files, work).tolist() == expected.tolist()
    no_weights = job(context(tmp_path), threads=1)
    assert distributed.factors(cluster.Local().map, files, no_weights) is None
