"""The train stage's feature matrix: read a column at a time into one column-major matrix that
LightGBM takes without a copy, and gives the very model the pandas frame gives."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from pipespec.core.documents import TableMeta
from pipespec.stages.parquet import write_table
from pipespec.stages.train_local import feature_frame

PARAMS = {"objective": "binary", "verbose": -1, "seed": 1, "deterministic": True,
          "num_threads": 1, "min_data_in_leaf": 5}  # fmt: skip


def table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "f64": rng.normal(size=n),
            "f32": rng.normal(size=n).astype("float32"),
            "i64": rng.integers(0, 50, n),
            "i8_nulls": pd.array(rng.integers(0, 5, n), dtype="Int8"),
            "flag": rng.random(n) < 0.5,
            "code": rng.integers(0, 4, n).astype("int32"),  # a categorical's codes
        }
    )
    frame.loc[rng.random(n) < 0.1, "f64"] = np.nan
    frame.loc[rng.random(n) < 0.1, "i8_nulls"] = pd.NA
    frame["y"] = (frame["f64"].fillna(0) + frame["code"] + rng.normal(size=n) > 1.5).astype(int)
    return frame


def model_text(data: pd.DataFrame, labels: pd.Series) -> str:
    dataset = lgb.Dataset(data, label=labels, categorical_feature=["code"])
    return lgb.train(PARAMS, dataset, num_boost_round=15).model_to_string()


@pytest.mark.parametrize(
    "columns",
    [
        ["f64", "f32", "i64", "i8_nulls", "flag", "code"],  # float64 matrix
        ["f32", "flag", "code"],  # LightGBM's dtype: float64 (int32 with float32)
        ["i8_nulls", "flag"],  # integers with nulls become float64, as in pandas
    ],
)
def test_same_values_and_the_same_model_as_the_frame(tmp_path: Path, columns: list[str]) -> None:
    path = tmp_path / "train.parquet"
    write_table(table(), path, TableMeta(target="y"))
    frame = pd.read_parquet(path)
    matrix = feature_frame(path, columns)
    assert list(matrix.columns) == columns
    expected = frame[columns]
    dtypes = [*(d.type for d in expected.dtypes), np.float32]
    values = matrix.to_numpy(copy=False)
    assert values.dtype == np.result_type(*dtypes)
    np.testing.assert_array_equal(values, expected.to_numpy(dtype=values.dtype, na_value=np.nan))
    if "code" in columns:
        assert model_text(matrix, frame["y"]) == model_text(expected, frame["y"])


def test_lightgbm_gets_the_matrix_itself(tmp_path: Path) -> None:
    """No copy: the frame hands back one column-major matrix, which LightGBM reads as is."""
    path = tmp_path / "train.parquet"
    write_table(table(), path)
    frame = feature_frame(path, ["f64", "i64", "code"])
    first, second = frame.to_numpy(dtype="float64", copy=False), frame.to_numpy(copy=False)
    assert first.flags["F_CONTIGUOUS"]
    assert np.shares_memory(first, second)


def test_text_columns_take_the_frame_path(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    data = table().assign(city=lambda f: np.where(f["flag"], "a", "b"))
    data["city"] = data["city"].astype("category")
    write_table(data, path)
    frame = feature_frame(path, ["f64", "city"])
    assert isinstance(frame["city"].dtype, pd.CategoricalDtype)


def test_run_keeps_the_best_iteration_and_writes_its_results(tmp_path: Path, capsys) -> None:
    """The local trainer through the kind: early stopping on valid, the model cut there, its
    metrics and importance, the tree-count line; class weights and CV where asked."""
    from test_training import context, tables

    from pipespec.stages import train

    tables(tmp_path)
    ctx = context(tmp_path, weight="w", model={"num_boost_round": 80})
    train.run(ctx)
    booster = lgb.Booster(model_file=ctx.output("model"))
    metrics = json.loads(ctx.output("metrics").read_text())
    assert set(metrics) == {"train_rows", "best_iteration", "valid_binary_logloss"}
    assert metrics["train_rows"] == 600
    assert booster.current_iteration() == metrics["best_iteration"] < 80
    importance = pd.read_csv(ctx.output("importance"))
    assert list(importance.columns) == ["feature", "gain"]
    assert set(importance["feature"]) == {"x", "city"}
    best = metrics["best_iteration"]
    assert f"{best} trees ({best} boosting rounds) (of 80 rounds max)" in capsys.readouterr().err
    plain = ctx.output("model").read_bytes()

    weighted = {"num_boost_round": 80, "class_weight": "balanced", "cv_folds": 3}
    balanced = context(tmp_path, weight="w", model=weighted)
    train.run(balanced)
    assert ctx.output("model").read_bytes() != plain
    cv = json.loads(ctx.output("metrics").read_text())["cv"]
    assert set(cv) == {"folds", "best_iteration", "binary_logloss_mean", "binary_logloss_std"}
    assert cv["folds"] == 3
