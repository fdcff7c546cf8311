"""Experiment to production through DVC: push the bundle to a directory remote, fetch one
version on a "serving host" with plain `dvc get REPO models/bundle --rev REV`, serve it."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_helpers import Server

from helpers import commit_all, run_tool
from pipespec.bundle.bundle import Bundle

pytestmark = pytest.mark.slow


def test_dvc_get_from_a_clone_with_a_directory_remote_yields_a_bundle_that_serves(
    trained_project: Path, tmp_path: Path, serve
) -> None:
    # The team's repository: a clone of the trained project, a directory remote, a push.
    repo = tmp_path / "repo"
    run_tool("git", "clone", "-q", str(trained_project), str(repo), cwd=tmp_path)
    cache = trained_project / ".dvc" / "cache"
    run_tool("dvc", "cache", "dir", "--local", str(cache), cwd=repo)  # reuse, do not rebuild
    remote = tmp_path / "remote"
    run_tool("dvc", "remote", "add", "-d", "store", str(remote), cwd=repo)
    commit_all(repo, "add a DVC remote")
    run_tool("dvc", "push", cwd=repo)
    rev = run_tool("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()

    # The serving host: nothing but `dvc get` and `pipespec serve`.
    host = tmp_path / "host"
    host.mkdir()
    run_tool("dvc", "get", str(repo), "models/bundle", "--rev", rev, "-o", "bundle", cwd=host)
    original = trained_project / "models" / "bundle"
    for path in sorted(original.iterdir()):
        assert (host / "bundle" / path.name).read_bytes() == path.read_bytes(), path.name
    server: Server = serve(host / "bundle")
    health = server.client.get("/health").json()
    assert health["bundle"] == Bundle.load(original).sha
    card = server.client.get("/metadata").json()["card"]
    record = {
        c["name"]: _typical(c)
        for c in server.client.get("/metadata").json()["contract"]["schema"]["columns"]
    }
    answer = server.client.post("/predict", json=record)
    assert answer.status_code == 200, answer.text
    assert 0 <= answer.json()["prediction"]["probability"] <= 1
    assert card["model"]["target"] == "churned"


def _typical(column: dict) -> object:
    """A value the column accepts: its first category, or the middle of its range."""
    if column["type"] == "categorical":
        return column["categories"][0]
    middle = (column["min"] + column["max"]) / 2
    return round(middle) if column["dtype"] == "int" else middle
