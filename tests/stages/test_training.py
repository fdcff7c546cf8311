"""What every trainer shares (``stages.training``): the job read from the params and the
training table, LightGBM's parameters of a model config, monotone constraints by feature name
(under any of LightGBM's aliases), class and row weights, and the tree-count line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipespec.core import lightgbm_params as lightgbm_names
from pipespec.core.documents import TableMeta
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages import train
from pipespec.stages.context import ParamsView, StageContext
from pipespec.stages.parquet import write_table
from pipespec.stages.training import (
    class_factors,
    job,
    label_counts,
    lightgbm_params,
    monotone_by_name,
    row_weights,
    tree_count,
)

MODEL = {
    "name": "lightgbm", "objective": None, "num_boost_round": 30, "early_stopping_rounds": 5,
    "learning_rate": 0.1, "num_leaves": 7, "max_depth": -1, "min_data_in_leaf": 5,
    "feature_fraction": 1.0, "bagging_fraction": 1.0, "bagging_freq": 0, "lambda_l1": 0.0,
    "lambda_l2": 0.0, "class_weight": None, "cv_folds": 0, "params": {},
}  # fmt: skip


def context(root: Path, *, model: dict[str, Any] | None = None, **dataset: Any) -> StageContext:
    """A train stage's context over ``root/train.parquet`` (and ``valid.parquet`` if there)."""
    params = {
        "seed": 7,
        "dataset": {"target": "y", "task": "binary", "weight": None, **dataset},
        "model": {**MODEL, **(model or {})},
        "compute": {"backend": "local", "num_threads": 1, "workers": 2, "executors": 2},
    }
    inputs = {name: root / f"{name}.parquet" for name in ("train", "valid")}
    outputs = {
        "model": root / "model.txt",
        "metrics": root / "metrics.json",
        "importance": root / "importance.csv",
    }
    view = ParamsView(params, train.READS, "train")
    return StageContext("train", view, {k: p for k, p in inputs.items() if p.exists()}, outputs,
                        root)  # fmt: skip


def tables(root: Path, n: int = 800, seed: int = 0) -> None:
    """A binary table with a weight column and a categorical feature, split train/valid."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "city": rng.integers(0, 3, n).astype("float64"),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    frame["y"] = (frame["x"] + frame["city"] + rng.normal(size=n) > 1.8).astype("int64")
    meta = TableMeta(target="y", task="binary", classes=["no", "yes"], categorical=["city"])
    write_table(frame.iloc[: n * 3 // 4], root / "train.parquet", meta)
    write_table(frame.iloc[n * 3 // 4 :], root / "valid.parquet", meta)


def test_the_job_is_read_once_for_every_trainer(tmp_path: Path) -> None:
    tables(tmp_path)
    ctx = context(tmp_path, weight="w", model={"params": {"mc": {"x": 1}}})
    work = job(ctx, threads=3)
    assert work.features == ["x", "city"]  # neither the target nor the weight
    assert work.categorical == ["city"]
    assert work.classes == ["no", "yes"]
    assert (work.rounds, work.stopping, work.metric) == (30, 5, "binary_logloss")
    assert work.params["num_threads"] == 3
    assert work.params["mc"] == [1, 0]  # by name, in the table's order
    assert work.default_loss


def test_a_missing_target_is_refused_naming_the_column_and_file(tmp_path: Path) -> None:
    tables(tmp_path)
    with pytest.raises(DataError, match=r"target column 'churned' is not in .*train\.parquet"):
        job(context(tmp_path, target="churned"), threads=1)


def test_lightgbm_params_of_a_model_config() -> None:
    model = {**MODEL, "objective": "cross_entropy", "params": {"max_bin": 63}, "extra_trees": True}
    params = lightgbm_params(model, task="multiclass", seed=3, threads=2, num_class=4)
    assert params["objective"] == "cross_entropy"  # the model's own, else the task's
    assert params["metric"] == "multi_logloss"
    assert (params["num_class"], params["seed"], params["num_threads"]) == (4, 3, 2)
    assert (params["deterministic"], params["force_col_wise"]) == (True, True)
    assert (params["max_bin"], params["extra_trees"]) == (63, True)
    assert not {"num_boost_round", "class_weight", "cv_folds"} & set(params)
    regression = lightgbm_params(MODEL, task="regression", seed=0, threads=1, num_class=None)
    assert (regression["objective"], regression["metric"]) == ("regression", "rmse")
    assert "num_class" not in regression


def test_monotone_constraints_by_name_under_every_alias() -> None:
    assert lightgbm_names.aliases("monotone_constraints") == (
        "monotone_constraints", "mc", "monotone_constraint", "monotonic_cst",
    )  # fmt: skip
    for key in lightgbm_names.aliases("monotone_constraints"):
        params: dict[str, Any] = {key: {"c": -1, "a": 1}}
        monotone_by_name(params, ["a", "b", "c"])
        assert params[key] == [1, 0, -1]
    listed = {"monotone_constraints": [1, 0, -1]}
    monotone_by_name(listed, ["a", "b", "c"])  # a list in the table's order stays as it is
    assert listed == {"monotone_constraints": [1, 0, -1]}
    with pytest.raises(
        ConfigError, match=r"model\.params\.monotonic_cst: no feature 'tenure'"
    ) as e:
        monotone_by_name({"monotonic_cst": {"tenure": 1}}, ["tenure_months", "age"])
    assert "Did you mean 'tenure_months'?" in str(e.value.hint)
    with pytest.raises(ConfigError, match=r"model\.params\.mc: values must be -1, 0 or 1, got"):
        monotone_by_name({"mc": {"age": 2}}, ["age"])


def test_class_factors_balanced_and_by_name() -> None:
    counts = label_counts(np.array([0, 0, 0, 1], dtype="int8"), 3)
    assert counts.tolist() == [3, 1, 0]
    balanced = class_factors("balanced", ["a", "b", "c"], counts)
    np.testing.assert_allclose(balanced, [4 / 9, 4 / 3, 4 / 3])  # an empty class counts as 1
    assert class_factors({"b": 5}, ["a", "b", "c"], counts).tolist() == [1.0, 5.0, 1.0]
    with pytest.raises(ConfigError, match=r"model\.class_weight names unknown class\(es\) \['z'\]"):
        class_factors({"z": 2}, ["a", "b"], counts)


def test_row_weights_are_the_weight_column_times_the_class_factor() -> None:
    frame = pd.DataFrame({"y": [0, 1, 1], "w": [1.0, 2.0, 0.5]})
    factors = np.array([3.0, 10.0])
    assert row_weights(frame, "y", None, None) is None  # unweighted: LightGBM gets None
    assert row_weights(frame, "y", "w", None).tolist() == [1.0, 2.0, 0.5]
    assert row_weights(frame, "y", None, factors).tolist() == [3.0, 10.0, 10.0]
    assert row_weights(frame, "y", "w", factors).tolist() == [3.0, 20.0, 5.0]


def test_tree_count_counts_one_tree_per_class_and_round() -> None:
    assert tree_count(40, 1) == "40 trees (40 boosting rounds)"
    assert tree_count(40, 3) == "120 trees (40 boosting rounds x 3 classes)"
