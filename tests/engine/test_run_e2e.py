"""End to end through real git, DVC and LightGBM: `pipespec run`, plain `dvc repro`,
`dvc exp run -S`, `dvc params diff`, and bad configs leaving files intact."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import BIN, SMALL, commit_all, lock_md5s, read_yaml, run_cli, run_main, run_tool
from pipespec.engine.compose import strip_header

pytestmark = pytest.mark.slow


def ran(output: str) -> list[str]:
    found = re.search(r"^ran: (.*?)  \(", output, re.M)
    assert found, output
    return [] if found.group(1) == "nothing" else found.group(1).split(", ")


def run_unactivated(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`.venv/bin/pipespec ARGS` with the venv's scripts not on PATH (not activated)."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(BIN))
    env = {**os.environ, "PATH": path}
    assert shutil.which("pipespec", path=path) is None
    return subprocess.run(
        [str(BIN / "pipespec"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_run_rerun_and_selective_reruns(new_project) -> None:
    root = new_project()
    first = run_cli("run", *SMALL, cwd=root)
    assert ran(first.stderr) == [
        "load",
        "validate",
        "split",
        "featurize",
        "train",
        "package",
        "evaluate",
        "behavior",
        "gate",
    ]
    metrics = read_yaml(root / "metrics" / "evaluate.json")
    assert 0.6 < metrics["test"]["auc"] <= 1.0
    lock = (root / "dvc.lock").read_bytes()

    second = run_cli("run", *SMALL, cwd=root)
    assert ran(second.stderr) == []
    assert (root / "dvc.lock").read_bytes() == lock

    before = lock_md5s(root)
    third = run_cli("run", *SMALL, "model.num_leaves=7", cwd=root)
    assert ran(third.stderr) == ["train", "package", "evaluate", "behavior", "gate"]
    after = lock_md5s(root)
    changed = {p for p in before if before[p] != after[p]}
    upstream = ("data/load", "data/validate", "data/split", "data/featurize", "models/featurize")
    assert not {p for p in changed if p.startswith(upstream)}, changed
    assert {"models/train/model.txt", "data/evaluate/predictions.parquet"} <= changed

    # with the venv not activated: DVC's stage commands still find this environment's pipespec
    fourth = run_unactivated(
        "run", *SMALL, "model.num_leaves=7", "evaluation.threshold=0.3", cwd=root
    )
    assert fourth.returncode == 0, fourth.stderr
    assert ran(fourth.stderr)[:2] == ["package", "evaluate"]  # the threshold is the bundle's
    assert "train" not in ran(fourth.stderr)

    # Same inputs, params and versions: forcing every stage leaves dvc.lock byte-identical.
    lock = (root / "dvc.lock").read_bytes()
    run_tool("dvc", "repro", "-f", cwd=root)
    assert (root / "dvc.lock").read_bytes() == lock


def test_plain_dvc_repro_never_runs_on_stale_params(new_project) -> None:
    root = new_project()
    run_cli("run", *SMALL, cwd=root)
    outputs = lock_md5s(root)
    params = (root / "params.yaml").read_bytes()
    cfg = root / "configs" / "model" / "lightgbm.yaml"
    cfg.write_text(cfg.read_text().replace("learning_rate: 0.05", "learning_rate: 0.2"))

    proc = run_tool("dvc", "repro", cwd=root, check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "params.yaml is stale" in message
    assert "pipespec compose dataset.rows=3000 model.num_boost_round=40" in message
    assert "Running stage 'train'" not in message
    assert lock_md5s(root) == outputs
    assert (root / "params.yaml").read_bytes() == params

    # A pipeline edit is caught the same way (dvc.yaml is stale).
    run_main("compose", *SMALL, cwd=root)
    pipe = root / "pipelines" / "train.yaml"
    text = pipe.read_text()
    scored = "      valid: split.valid\n      test: split.test\n  behavior:"
    assert scored in text
    pipe.write_text(text.replace(scored, "      test: split.test\n  behavior:"))
    check = run_main("compose", "--check", cwd=root, check=False)
    assert check.returncode == 3
    assert "dvc.yaml is stale" in check.stderr
    proc = run_tool("dvc", "repro", cwd=root, check=False)
    assert proc.returncode != 0
    assert "dvc.yaml is stale" in proc.stdout + proc.stderr

    run_cli("run", *SMALL, cwd=root)  # recomposes and runs what the edits changed
    assert read_yaml(root / "params.yaml")["model"]["learning_rate"] == 0.2
    assert (
        "data/split/valid.parquet" not in read_yaml(root / "dvc.yaml")["stages"]["evaluate"]["deps"]
    )


def test_params_diff_and_dvc_exp_run(new_project) -> None:
    root = new_project()
    run_cli("run", *SMALL, cwd=root)
    commit_all(root, "baseline")

    run_main("compose", *SMALL, "model.num_leaves=9", cwd=root)
    diff = run_tool("dvc", "params", "diff", cwd=root).stdout
    assert re.search(r"model\.num_leaves\s+31\s+9", diff), diff
    ours = (root / "params.yaml").read_text()
    run_tool("git", "checkout", "--", "params.yaml", "dvc.yaml", cwd=root)

    exp = run_tool(
        "dvc",
        "exp",
        "run",
        "-S",
        "dataset.rows=3000",
        "-S",
        "model.num_boost_round=40",
        "-S",
        "model.num_leaves=9",
        cwd=root,
    )
    assert "Running stage 'train'" in exp.stdout + exp.stderr
    assert "Running stage 'load'" not in exp.stdout + exp.stderr
    theirs = (root / "params.yaml").read_text()
    assert strip_header(ours) == theirs  # DVC's Hydra composition gives the same params
    run_main("compose", "--check", cwd=root)  # and pipespec accepts what DVC wrote


def test_env_switch_is_a_params_diff(new_project) -> None:
    root = new_project()
    run_main("compose", cwd=root)
    commit_all(root, "dev")
    run_main("compose", "env=prod", cwd=root)
    diff = run_tool("dvc", "params", "diff", "--all", cwd=root).stdout
    rows = [  # columns are separated by two or more spaces; a value may hold one (">= 0.6")
        re.split(r"\s{2,}", line.strip())
        for line in diff.splitlines()
        if line.startswith("params.yaml")
    ]
    changed = {row[1] for row in rows if row[2] != row[3]}
    assert changed == {"env.name", "dataset.sample.rows", "model.num_boost_round"}, diff
    prod = read_yaml(root / "params.yaml")
    assert prod["env"]["name"] == "prod"
    assert prod["dataset"]["sample"]["fraction"] is None
