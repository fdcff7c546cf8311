"""Models and evaluation on real data: every task, fidelity with LightGBM's own examples,
plots through `dvc plots`, gates and `pipespec diff`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import SMALL, commit_all, read_yaml, run_cli, run_tool, shared

pytestmark = pytest.mark.slow

EXAMPLES = ("lightgbm_examples",)


def _conf(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = (p.strip() for p in line.split("=", 1))
            pairs[key] = value
    return pairs


def _tsv_dataset(folder: Path, stem: str, task: str) -> list[str]:
    return [
        "dataset=csv",
        f"dataset.path={folder / (stem + '.train')}",
        f"dataset.test_path={folder / (stem + '.test')}",
        "dataset.sep=\\t",
        "dataset.header=false",
        "dataset.target=Column_0",
        f"dataset.task={task}",
        "env=prod",
    ]


def test_fidelity_with_lightgbm_binary_example(new_project) -> None:
    """pipespec trains the model that calling LightGBM directly with the example's train.conf
    trains (weights file included): identical predictions on the test file."""
    import lightgbm as lgb

    folder = shared(*EXAMPLES, "binary_classification")
    conf = _conf(folder / "lightgbm_binary_train.conf")
    root = new_project()
    run_cli(
        "run",
        *_tsv_dataset(folder, "binary", "binary"),
        f"dataset.weight_path={folder / 'binary.train.weight'}",
        "dataset.weight=weight",
        "split.valid=0",
        "model.early_stopping_rounds=null",
        f"model.num_boost_round={conf['num_trees']}",
        f"model.learning_rate={conf['learning_rate']}",
        f"model.num_leaves={conf['num_leaves']}",
        f"model.feature_fraction={conf['feature_fraction']}",
        f"model.bagging_freq={conf['bagging_freq']}",
        f"model.bagging_fraction={conf['bagging_fraction']}",
        f"model.min_data_in_leaf={conf['min_data_in_leaf']}",
        f"+model.params.min_sum_hessian_in_leaf={conf['min_sum_hessian_in_leaf']}",
        f"+model.params.max_bin={conf['max_bin']}",
        cwd=root,
    )
    ours = pd.read_parquet(root / "data" / "evaluate" / "predictions.parquet")
    ours = ours[ours["split"] == "test"].sort_values("row")["prediction"].to_numpy()

    params = {
        k: conf[k]
        for k in (
            "objective",
            "learning_rate",
            "num_leaves",
            "feature_fraction",
            "bagging_freq",
            "bagging_fraction",
            "min_data_in_leaf",
            "min_sum_hessian_in_leaf",
            "max_bin",
        )
    }
    params |= {"seed": 42, "num_threads": 2, "verbosity": -1}
    booster = lgb.train(
        params,
        lgb.Dataset(str(folder / "binary.train")),  # reads .weight
        num_boost_round=int(conf["num_trees"]),
    )
    test = np.loadtxt(folder / "binary.test", delimiter="\t")
    theirs = booster.predict(test[:, 1:])
    assert len(ours) == len(theirs) == 500
    np.testing.assert_array_equal(ours, theirs)


def test_multiclass_example(new_project) -> None:
    folder = shared(*EXAMPLES, "multiclass_classification")
    root = new_project()
    run_cli(
        "run",
        *_tsv_dataset(folder, "multiclass", "multiclass"),
        "model.num_boost_round=100",
        "model=lightgbm_small",
        cwd=root,
    )
    metrics = read_yaml(root / "metrics" / "evaluate.json")
    assert set(metrics["test"]) == {"logloss", "accuracy", "macro_f1"}
    assert metrics["test"]["accuracy"] > 0.35  # 5 balanced classes: chance is 0.2
    assert metrics["test"]["logloss"] < np.log(5)
    confusion = pd.read_csv(root / "plots" / "evaluate" / "confusion.csv")
    assert len(confusion) == 500
    assert set(confusion["actual"]) == {0, 1, 2, 3, 4}
    assert not (root / "plots" / "evaluate" / "roc.csv").exists()  # binary only


def test_regression_on_bike_sharing(new_project) -> None:
    path = shared("bike_sharing", "hour.csv")
    root = new_project()
    run_cli(
        "run",
        "dataset=csv",
        f"dataset.path={path}",
        "dataset.target=cnt",
        "dataset.task=regression",
        "dataset.drop=[instant,dteday,casual,registered]",
        "env=prod",
        "model.num_boost_round=300",
        "model.cv_folds=3",
        cwd=root,
    )
    metrics = read_yaml(root / "metrics" / "evaluate.json")
    assert set(metrics["test"]) >= {"rmse", "mae", "r2"}
    assert metrics["test"]["r2"] > 0.85
    cv = read_yaml(root / "metrics" / "train.json")["cv"]
    assert cv["folds"] == 3
    assert 0 < cv["rmse_mean"] < 100
    residuals = pd.read_csv(root / "plots" / "evaluate" / "residuals.csv")
    assert list(residuals.columns) == ["actual", "predicted"]


def test_binary_with_class_weights_and_tuned_threshold(new_project) -> None:
    path = shared("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    root = new_project()
    common = [
        "dataset=csv",
        f"dataset.path={path}",
        "dataset.target=Churn",
        "dataset.task=binary",
        "env=prod",
        "model.num_boost_round=200",
    ]
    run_cli("run", *common, cwd=root)
    plain = read_yaml(root / "metrics" / "evaluate.json")
    run_cli(
        "run",
        *common,
        "model.class_weight=balanced",
        "evaluation.optimize_threshold=true",
        cwd=root,
    )
    weighted = read_yaml(root / "metrics" / "evaluate.json")
    assert weighted["test"]["auc"] > 0.80
    # balancing the classes trades precision for recall on the minority (churn) class
    assert weighted["test"]["recall"] > plain["test"]["recall"]
    assert weighted["threshold"] != 0.5
    assert {"auc", "pr_auc", "logloss", "brier", "precision", "recall", "f1"} <= set(
        weighted["test"]
    )


def test_dvc_plots_show_renders_every_plot(trained_project: Path, tmp_path: Path) -> None:
    html = tmp_path / "plots"
    proc = run_tool("dvc", "plots", "show", "-o", str(html), cwd=trained_project)
    assert "ERROR" not in proc.stdout + proc.stderr
    page = (html / "index.html").read_text()
    for plot, field in (
        ("evaluate_roc_csv", "fpr"),
        ("evaluate_precision_recall_csv", "recall"),
        ("evaluate_calibration_csv", "observed"),
        ("evaluate_confusion_csv", "actual"),
        ("train_importance_csv", "gain"),
    ):
        assert f"vegaEmbed('#plots_{plot}'" in page, plot
        assert f'"{field}"' in page, field


def test_diff_names_params_metrics_and_reruns(new_project) -> None:
    root = new_project()
    run_cli("run", *SMALL, cwd=root)
    commit_all(root, "baseline")
    run_cli("run", *SMALL, "model.num_leaves=7", cwd=root)
    commit_all(root, "fewer leaves")

    table = run_cli("diff", "HEAD~1", "HEAD", cwd=root).stdout
    assert re.search(r"model\.num_leaves\s+│\s+31\s+│\s+7", table), table
    reruns = re.search(r"^re-runs: (.*)$", table, re.M).group(1).split(", ")
    assert reruns[:3] == ["train", "package", "evaluate"]
    assert not {"load", "split", "featurize"} & set(reruns)
    assert "load" in table.split("unaffected:")[1]

    md = run_cli("diff", "HEAD~1", "HEAD", "--md", cwd=root).stdout
    assert "| `model.num_leaves` | 31 | 7 |" in md
    auc = re.search(
        r"\| `metrics/evaluate.json:test.auc` \| ([\d.]+) \| ([\d.]+) \| (-?[\d.e-]+) \| (.*) \|",
        md,
    )
    assert auc, md
    old, new = float(auc.group(1)), float(auc.group(2))
    assert ("better" in auc.group(4)) == (new > old)
    assert "**Re-runs:** train, package, evaluate" in md
    assert re.search(r"\*\*Unaffected:\*\* .*load", md)

    clean = run_cli("diff", cwd=root).stdout  # workspace == HEAD
    assert "params: no change" in clean


def test_failed_gate_exits_non_zero_naming_the_metric(new_project) -> None:
    root = new_project()
    proc = run_cli("run", *SMALL, '+evaluation.gates.test.auc=">= 0.99"', cwd=root, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert re.search(r"quality gate failed: test\.auc = 0\.\d+, required >= 0\.99", out), out
    report = json.loads((root / "metrics" / "gate.json").read_text())
    assert report["gates_failed"] == 1

    ok = run_cli("run", *SMALL, '+evaluation.gates.test.auc=">= 0.5"', cwd=root)
    assert "pass" in ok.stderr
