"""Sweeps and searches as DVC experiments: every combination an experiment, the workspace
left as it was, failures reported without stopping the rest, and an Optuna search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import SMALL, commit_all, read_yaml, run_cli, run_main, shared
from pipespec.engine.experiments import expand, list_experiments
from pipespec.engine.project import Project

pytestmark = pytest.mark.slow


@pytest.fixture
def committed(new_project) -> Path:
    root = new_project()
    run_cli("run", *SMALL, cwd=root)
    commit_all(root, "baseline")
    return root


def test_expand_uses_hydras_sweep_grammar(new_project) -> None:
    project = Project(new_project())
    combos = expand(
        project,
        (
            "a=1",
            "model.num_leaves=range(7,10)",
            "model=glob(lightgbm*)",
            "+model.params.max_bin=31,63",
        ),
    )
    assert len(combos) == 3 * 2 * 2
    assert ("a=1", "model.num_leaves=7", "model=lightgbm", "+model.params.max_bin=31") in combos
    assert {c[2] for c in combos} == {"model=lightgbm", "model=lightgbm_small"}
    assert expand(project, ("model.num_leaves=choice(3,5)",)) == [
        ("model.num_leaves=3",),
        ("model.num_leaves=5",),
    ]


def test_sweep_2x2_glob_and_plus_gives_four_experiments(committed: Path) -> None:
    """A 2x2 sweep: a glob over the model group and a `+key` addition."""
    params = (committed / "params.yaml").read_bytes()
    proc = run_cli(
        "run",
        "-m",
        *SMALL,
        "model=glob(lightgbm*)",
        "+model.params.max_bin=31,63",
        "-j",
        "2",
        cwd=committed,
    )
    assert proc.stderr.count("success") == 4, proc.stderr
    assert (committed / "params.yaml").read_bytes() == params  # the workspace is as it was
    exps = {r.name: r for r in list_experiments(Project(committed)) if r.state != "baseline"}
    assert len(exps) == 4
    for model in ("lightgbm", "lightgbm_small"):
        for max_bin in (31, 63):
            row = exps[f"model={model},+model.params.max_bin={max_bin}"]
            assert row.params["model.name"] == model
            assert row.params["model.params.max_bin"] == max_bin
            assert row.params["dataset.rows"] == 3000  # the fixed overrides apply to each
            assert 0.5 < row.metrics["valid.auc"] <= 1.0
    assert len({round(r.metrics["valid.auc"], 6) for r in exps.values()}) > 1
    table = run_main("exp", "show", "--sort", "valid.auc", "--md", cwd=committed).stdout
    header = table.splitlines()[0]
    assert "model.name" in header
    assert "model.params.max_bin" in header
    assert "dataset.rows" not in header  # only the params that differ


def test_a_failing_trial_is_reported_and_the_others_complete(committed: Path) -> None:
    proc = run_cli("run", "-m", *SMALL, "model.num_leaves=1,abc,7", cwd=committed, check=False)
    out = proc.stderr
    assert re.search(r"model\.num_leaves=7\s*│\s*success", out), out
    assert re.search(r"model\.num_leaves=1\s*│\s*failed", out), out  # LightGBM refuses it
    assert re.search(r"model\.num_leaves=abc\s*│\s*invalid", out), out  # does not compose
    assert "num_leaves" in out.split("model.num_leaves=1", 2)[-1]  # the reason names the key


def test_optuna_search_beats_the_defaults_and_exp_apply(new_project) -> None:
    path = shared("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    root = new_project()
    data = ["dataset=telco", "model.num_boost_round=150"]
    run_cli("run", *data, cwd=root)
    commit_all(root, "defaults")
    baseline = read_yaml(root / "metrics" / "evaluate.json")["valid"]["logloss"]
    (root / "configs" / "hparams_search" / "small.yaml").write_text(
        "name: small\nmetric: valid.logloss\ndirection: minimize\nn_trials: 4\njobs: 2\n"
        "sampler: tpe\nparams:\n"
        "  model.num_leaves: range(3, 16)\n"
        "  model.learning_rate: tag(log, interval(0.01, 0.1))\n"
        "  model.min_data_in_leaf: choice(20, 50, 100)\n"
    )
    proc = run_cli("run", *data, "hparams_search=small", cwd=root)
    assert proc.stderr.count("success") == 4, proc.stderr  # two batches of two
    best = re.search(r"best: (\S+) valid\.logloss=([\d.]+)", proc.stderr)
    assert best, proc.stderr
    assert float(best.group(2)) < baseline
    before = read_yaml(root / "params.yaml")["model"]
    run_cli("exp", "apply", best.group(1), cwd=root)
    after = read_yaml(root / "params.yaml")["model"]
    assert after != before
    assert 3 <= after["num_leaves"] < 16
    assert path.exists()
