"""The registry in git with real git, a real DVC directory remote and real GTO: release and
promote, read by `gto show`/`gto history` and `dvc artifacts get`; every refusal names its
cause and creates no tag; serving and predicting by reference from a local clone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundle.bundle_helpers import start_server
from helpers import BIN, SMALL, clone_trained, commit_all, run_cli, run_main, run_tool

pytestmark = pytest.mark.slow


def make_repo(trained: Path, where: Path) -> Path:
    """A team repository: a clone of the trained project with a DVC directory remote, the
    bundle pushed to it and the outputs checked out (from the trained project's cache)."""
    repo = clone_trained(trained, where / "repo")
    run_tool("dvc", "remote", "add", "-d", "store", str(where / "remote"), cwd=repo)
    commit_all(repo, "a DVC remote")
    run_tool("dvc", "push", "-q", cwd=repo)
    return repo


def tags(repo: Path) -> list[str]:
    return run_tool("git", "tag", "--list", cwd=repo).stdout.split()


def registry(repo: Path) -> dict:
    return json.loads(run_main("registry", "--json", cwd=repo).stdout)


def refused(repo: Path, *args: str) -> str:
    """Run a command that must be refused: exit 9, no new tag; its stderr."""
    before = tags(repo)
    proc = run_main(*args, cwd=repo, check=False)
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert tags(repo) == before
    return proc.stderr


@pytest.fixture(scope="module")
def team(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The team repository with v0.1.0 released and promoted to staging, then prod."""
    repo = make_repo(trained_project, tmp_path_factory.mktemp("registry"))
    run_cli("release", "--bump", "minor", "-m", "first release", cwd=repo)
    run_cli("promote", "model", "v0.1.0", "--to", "staging", cwd=repo)
    run_main("promote", "model", "0.1.0", "--to", "prod", cwd=repo)
    return repo


def test_release_and_promotions_are_gto_tags_that_gto_and_dvc_read(team: Path) -> None:
    assert tags(team) == ["model#prod#2", "model#staging#1", "model@v0.1.0"]
    kind = run_tool("git", "cat-file", "-t", "model@v0.1.0", cwd=team).stdout.strip()
    assert kind == "tag"  # annotated, as GTO requires
    shown = json.loads(run_tool(str(BIN / "gto"), "show", "--json", cwd=team).stdout)
    assert shown["model"]["version"] == "v0.1.0"
    assert shown["model"]["stage"] == {"prod": "v0.1.0", "staging": "v0.1.0"}
    history = json.loads(run_tool(str(BIN / "gto"), "history", "model", "--json", cwd=team).stdout)
    events = sorted(e["event"] for e in history)
    assert events == ["assignment", "assignment", "registration"], history

    # the evidence: in the tag message and in `pipespec registry --json`
    from pipespec.bundle.bundle import Bundle

    sha = Bundle.load(team / "models" / "bundle").sha
    message = run_tool("git", "tag", "-l", "--format=%(contents)", "model@v0.1.0", cwd=team).stdout
    assert "first release" in message
    assert sha in message
    (artifact,) = registry(team)["artifacts"]
    (version,) = artifact["versions"]
    assert version["stages"] == ["staging", "prod"]
    assert version["evidence"]["bundle"]["sha256"] == sha
    evaluate = json.loads((team / "metrics" / "evaluate.json").read_text())
    assert version["evidence"]["metrics"]["metrics/evaluate.json"] == evaluate
    assert version["evidence"]["gate"]["metrics/gate.json"]["gates_failed"] == 0
    table = run_main("registry", cwd=team).stdout
    assert "v0.1.0" in table
    assert "staging, prod" in table

    # DVC finds the artifact through dvc.yaml's `artifacts:` and the tags, from the remote
    host = team.parent / "dvc-host"
    host.mkdir()
    run_tool("dvc", "artifacts", "get", str(team), "model", "--stage", "prod", "-o", "b", cwd=host)
    assert Bundle.load(host / "b").sha == sha


def test_serve_and_predict_by_reference_from_a_local_clone(team: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    run_tool("git", "clone", "-q", str(team), str(clone), cwd=tmp_path)
    server = start_server(Path("model#prod"), tmp_path, "--repo", str(clone))
    try:
        health = server.client.get("/health").json()
        assert (health["version"], health["stage"]) == ("v0.1.0", "prod")
        release = server.client.get("/metadata").json()["release"]
        assert release["tag"] == "model@v0.1.0"
        assert release["evidence"]["bundle"]["sha256"] == health["bundle"]
    finally:
        server.stop()
    rows = tmp_path / "rows.csv"
    import pandas as pd

    pd.read_parquet(team / "data" / "split" / "test.parquet").dropna().head(50).to_csv(
        rows, index=False
    )
    out = tmp_path / "pred.csv"
    run_cli("predict", "--bundle", "model@v0.1.0", "--repo", str(clone), str(rows), str(out),
            cwd=tmp_path)  # fmt: skip
    local = tmp_path / "local.csv"
    run_cli("predict", "--bundle", str(team / "models" / "bundle"), str(rows), str(local),
            cwd=tmp_path)  # fmt: skip
    assert out.read_bytes() == local.read_bytes()
    proc = run_cli("predict", "--bundle", "model@v9.9.9", "--repo", str(clone), str(rows),
                   str(out), cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 9
    assert "no version v9.9.9 of artifact 'model'" in proc.stderr


def test_refusals_name_the_cause_and_create_no_tag(team: Path) -> None:
    stderr = refused(team, "promote", "model", "v7.0.0", "--to", "staging")
    assert "no version v7.0.0 of artifact 'model'" in stderr
    assert "Released versions: v0.1.0" in stderr
    stderr = refused(team, "promote", "model", "v0.1.0", "--to", "canary")
    assert "unknown stage 'canary'" in stderr
    stderr = refused(team, "release")
    assert "already released as model@v0.1.0" in stderr

    (team / "notes.txt").write_text("scratch\n")
    stderr = refused(team, "release")
    assert "uncommitted changes: notes.txt" in stderr
    (team / "notes.txt").unlink()

    card = team / "models" / "bundle" / "card.md"
    original = card.read_bytes()
    card.write_bytes(original + b"\nedited by hand\n")
    try:
        stderr = refused(team, "release")
        assert "dvc.lock does not match the outputs of: package" in stderr
    finally:
        card.write_bytes(original)

    # a new version with failed behaviour checks: staging yes, prod out of order, then refused
    # (metrics/behavior.json as the behavior stage writes it)
    report = {"behavior": {"passed": 0, "checks": 8, "failed": 2}}
    (team / "metrics" / "behavior.json").write_text(json.dumps(report))
    run_tool("dvc", "commit", "-f", "behavior", "gate", cwd=team)  # as the stage would
    commit_all(team, "behaviour report")
    run_cli("release", cwd=team)
    stderr = refused(team, "promote", "model", "v0.1.1", "--to", "prod")
    assert "'prod' is promoted only from 'staging'" in stderr
    run_cli("promote", "model", "v0.1.1", "--to", "staging", cwd=team)
    stderr = refused(team, "promote", "model", "v0.1.1", "--to", "prod")
    assert "behaviour checks failed (2 of 8 checks)" in stderr
    stages = registry(team)["artifacts"][0]["stages"]
    assert stages == {"staging": "v0.1.1", "prod": "v0.1.0"}


def test_a_failed_gate_is_not_released(trained_project: Path, tmp_path: Path) -> None:
    repo = make_repo(trained_project, tmp_path)
    gate = "+evaluation.gates.test.auc='>= 0.999'"
    proc = run_cli("run", *SMALL, gate, cwd=repo, check=False)
    assert proc.returncode == 6, proc.stderr  # dvc repro stopped: the gate stage failed
    assert "test.auc" in proc.stderr
    commit_all(repo, "an impossible gate")
    stderr = refused(repo, "release")
    assert "quality gate did not pass (metrics/gate.json): test.auc = " in stderr
    assert "required >= 0.999" in stderr
