"""The exported CI workflow's own steps, run in order in a fresh clone of a pull request on a
project made by `pipespec init`, with a directory DVC remote and without one; and the
pre-commit hooks of a new project refusing a stale commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import BIN, SMALL, commit_all, run_cli, run_tool

pytestmark = pytest.mark.slow

# what GitHub substitutes into the diff step's env on a pull-request event
EVENT = {
    "${{ github.event.pull_request.base.sha }}": None,  # the base commit, set by the test
    "${{ github.event.pull_request.number }}": "7",
    "${{ github.repository }}": "team/project",
    "${{ github.token }}": "token-of-the-run",
}
# stands in for the GitHub CLI: keeps the arguments and the comment body it was given
FAKE_GH = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$GH_OUT/args"
while [ $# -gt 0 ]; do
  if [ "$1" = --body-file ]; then cp "$2" "$GH_OUT/body.md"; fi
  shift
done
"""


def _git(*args: str, cwd: Path) -> str:
    return run_tool("git", *args, cwd=cwd).stdout.strip()


def _pull_request(origin: Path, tmp_path: Path) -> tuple[str, Path, dict]:
    """On ``origin`` (a project made by `pipespec init`): a branch ``pr`` with a param
    changed, composed and the workflow exported, nothing run; its fresh clone and workflow."""
    base = _git("rev-parse", "HEAD", cwd=origin)
    _git("checkout", "-q", "-b", "pr", cwd=origin)
    run_cli("compose", *SMALL, "model.num_leaves=7", "ci.install=pipespec --version",
            cwd=origin)  # fmt: skip
    run_cli("export", "github-actions", cwd=origin)
    commit_all(origin, "fewer leaves")
    clone = tmp_path / "clone"
    run_tool("git", "clone", "-q", "--branch", "pr", str(origin), str(clone), cwd=tmp_path)
    workflow = yaml.safe_load((clone / ".github/workflows/pipespec.yml").read_text())
    # `pipespec init` made `main`: the workflow triggers on it
    assert workflow["on"]["pull_request"]["branches"] == ["main"]
    return base, clone, workflow


def _run_steps(workflow: dict, clone: Path, base: str, tmp_path: Path) -> dict[str, str]:
    """Every `run` step of the workflow's job, in order, in the clone, with GitHub's
    pull-request values in their env and the fake `gh` on PATH; each one's output."""
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "gh").write_text(FAKE_GH)
    (fake / "gh").chmod(0o755)
    gh_out = tmp_path / "gh-out"
    gh_out.mkdir()
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
           "GH_OUT": str(gh_out)}  # fmt: skip
    values = {**EVENT, "${{ github.event.pull_request.base.sha }}": base}
    outputs = {}
    for step in workflow["jobs"]["pipeline"]["steps"]:
        if "uses" in step:  # checkout (the clone), setup-python (this venv), cache: not here
            continue
        step_env = {key: values[value] for key, value in (step.get("env") or {}).items()}
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
            cwd=clone, env={**env, **step_env}, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"step {step['name']!r}:\n{proc.stdout}\n{proc.stderr}"
        outputs[step["name"]] = proc.stdout + proc.stderr
    assert next(iter(outputs)) == "Install the project"
    assert (gh_out / "args").read_text().split() == [
        "pr", "comment", "7", "--edit-last", "--create-if-none", "--body-file",
        "pipespec-diff.md",
    ]  # fmt: skip
    body = (gh_out / "body.md").read_text()
    assert f"### pipespec diff `{base}`" in body
    assert "| `model.num_leaves` | 31 | 7 |" in body
    assert "`metrics/evaluate.json:test.auc`" in body
    assert "**Re-runs:** " in body
    assert "train" in body.split("**Re-runs:**")[1].split("\n")[0]
    return outputs


def test_workflow_steps_run_in_a_fresh_clone(trained_project: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    shutil.copytree(trained_project, origin, symlinks=True)
    remote = tmp_path / "remote"
    run_tool("dvc", "remote", "add", "-d", "store", str(remote), cwd=origin)
    run_tool("dvc", "push", cwd=origin)
    commit_all(origin, "a DVC remote")
    pushed_before = sum(1 for p in remote.rglob("*") if p.is_file())

    base, clone, workflow = _pull_request(origin, tmp_path)
    outputs = _run_steps(workflow, clone, base, tmp_path)
    repro = outputs["Reproduce the pipeline, pulling what the remote has"]
    assert "Running stage 'train'" in repro
    assert "Running stage 'load'" not in repro  # unchanged: pulled from the remote
    assert sum(1 for p in remote.rglob("*") if p.is_file()) > pushed_before


def test_workflow_steps_run_without_a_dvc_remote(trained_project: Path, tmp_path: Path) -> None:
    """A project made by `pipespec init`, no remote added: the workflow neither pulls nor
    pushes, and reproduces from DVC's cache, which the workflow's cache step keeps between
    runs (here: the origin's cache copied into the clone, as that step restores it)."""
    origin = tmp_path / "origin"
    shutil.copytree(trained_project, origin, symlinks=True)
    assert run_tool("dvc", "remote", "list", cwd=origin).stdout.strip() == ""
    base, clone, workflow = _pull_request(origin, tmp_path)
    steps = workflow["jobs"]["pipeline"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "dvc push" not in runs
    assert "--pull" not in runs
    cache = [s for s in steps if "cache" in str(s.get("uses", ""))]
    assert cache
    assert ".dvc/cache" in cache[0]["with"]["path"]
    shutil.copytree(origin / ".dvc/cache", clone / ".dvc/cache", symlinks=True)
    outputs = _run_steps(workflow, clone, base, tmp_path)
    repro = outputs["Reproduce the pipeline (no DVC remote: from DVC's cache)"]
    assert "Running stage 'train'" in repro
    assert "Running stage 'load'" not in repro  # unchanged: restored from DVC's cache


def test_pre_commit_refuses_a_stale_commit(new_project, tmp_path: Path) -> None:
    root = new_project()
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}

    def commit(message: str) -> subprocess.CompletedProcess[str]:
        """git commit; the hooks' report (git prints it on stderr) in ``stdout``."""
        run_tool("git", "add", "-A", cwd=root)
        proc = subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        proc.stdout += proc.stderr
        return proc

    install = subprocess.run([str(BIN / "pre-commit"), "install"], cwd=root, env=env,
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    first = commit("new project")
    assert first.returncode == 0, first.stdout + first.stderr
    head = _git("rev-parse", "HEAD", cwd=root)

    model = root / "configs/model/lightgbm.yaml"
    model.write_text(model.read_text().replace("num_leaves: 31", "num_leaves: 15"))
    stale = commit("more leaves, not composed")
    assert stale.returncode != 0
    assert "params.yaml and dvc.yaml match configs/" in stale.stdout
    assert "params.yaml is stale" in stale.stdout
    assert _git("rev-parse", "HEAD", cwd=root) == head
    run_cli("compose", cwd=root)
    assert commit("more leaves").returncode == 0

    run_cli("export", "kubernetes", cwd=root)
    assert commit("manifests").returncode == 0
    head = _git("rev-parse", "HEAD", cwd=root)
    run_cli("compose", "deploy.replicas=5", cwd=root)
    stale_export = commit("more replicas, not exported")
    assert stale_export.returncode != 0
    assert "deploy/kubernetes/pipespec.yaml" in stale_export.stdout
    assert _git("rev-parse", "HEAD", cwd=root) == head

    run_cli("export", cwd=root)
    (root / "mystages.py").write_text("import os\n\n\ndef run(ctx):\n    return None\n")
    lint = commit("a stage with an unused import")
    assert lint.returncode != 0
    assert "F401" in lint.stdout
    (root / "mystages.py").write_text("def run(ctx):\n    return None\n")
    done = commit("stage code fixed")
    assert done.returncode == 0, done.stdout + done.stderr
