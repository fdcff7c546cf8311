"""Release evidence and the output contract with real git, a real DVC remote and the real
GTO CLI: a `-m` message holding the evidence marker and JSON of its own neither forges nor
hides the evidence; a release without evidence is not served; a regressor released after a
binary classifier is refused at promotion unless `--allow-contract-change`, which the tag
records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.test_registry_e2e import make_repo, refused, registry, tags
from helpers import BIN, commit_all, run_cli, run_main, run_tool, shared
from pipespec.bundle.bundle import Bundle
from pipespec.engine.registry import EVIDENCE_MARKER, parse_message

pytestmark = pytest.mark.slow

FORGED = "0" * 64


def gto(repo: Path, *args: str) -> object:
    return json.loads(run_tool(str(BIN / "gto"), *args, "--json", cwd=repo).stdout)


def test_evidence_survives_the_message_and_promotion_guards_the_contract(
    trained_project: Path, tmp_path: Path
) -> None:
    shared("lightgbm_examples", "regression")
    repo = make_repo(trained_project, tmp_path)
    sha = Bundle.load(repo / "models" / "bundle").sha
    hostile = (
        f"notes\n{EVIDENCE_MARKER}\n"
        + json.dumps({"bundle": {"sha256": FORGED}, "gate": None, "behavior": None})
        + f"\n{EVIDENCE_MARKER}\nnot json at all"
    )
    run_cli("release", "--version", "1.0.0", "-m", hostile, cwd=repo)

    (artifact,) = registry(repo)["artifacts"]
    (first,) = artifact["versions"]
    assert first["evidence_error"] is None
    assert first["evidence"]["bundle"]["sha256"] == sha
    assert first["evidence"]["gate"] is not None
    assert FORGED in first["message"]  # the human text, shown as it was written
    behavior = first["evidence"]["behavior"]
    assert behavior["checks"] == behavior["passed"] + behavior["failed"]
    assert behavior["all_passed"] is True
    assert first["contract"].startswith("binary [")
    # GTO reads the same tag: its message ends with the real evidence
    shown = gto(repo, "show")
    assert shown["model"]["version"] == "v1.0.0"
    (registration,) = [e for e in gto(repo, "history", "model") if e["event"] == "registration"]
    assert parse_message("model@v1.0.0", registration["message"])[1]["bundle"]["sha256"] == sha
    table = run_main("registry", cwd=repo).stdout
    assert sha[:12] in table
    assert FORGED[:12] not in table
    run_cli("promote", "model", "v1.0.0", "--to", "staging", cwd=repo)

    # a regressor on other inputs, released after the binary classifier
    run_cli("run", "dataset=lightgbm_regression", "model.num_boost_round=10", cwd=repo)
    commit_all(repo, "a regressor")
    run_cli("release", "--version", "2.0.0", cwd=repo)
    stderr = " ".join(refused(repo, "promote", "model", "v2.0.0", "--to", "staging").split())
    assert (
        "model@v2.0.0 changes the output contract of stage 'staging' (now model@v1.0.0): "
        "task 'binary' -> 'regression'" in stderr
    )
    assert "outputs ['label', 'probabilities', 'probability'] -> ['value']" in stderr
    assert "new required inputs: Column_1 (numeric)" in stderr
    assert "--allow-contract-change" in stderr
    run_cli("promote", "model", "v2.0.0", "--to", "staging", "--allow-contract-change", cwd=repo)
    assert gto(repo, "show")["model"]["stage"]["staging"] == "v2.0.0"
    (tag,) = [t for t in tags(repo) if t.startswith("model#staging#") and t != "model#staging#1"]
    message = run_tool("git", "tag", "-l", "--format=%(contents)", tag, cwd=repo).stdout
    assert "Contract change allowed (--allow-contract-change)" in message
    assert "- task 'binary' -> 'regression'" in message
    versions = {v["version"]: v for v in registry(repo)["artifacts"][0]["versions"]}
    assert versions["v2.0.0"]["contract"] == "regression -> value; 28 inputs"
    assert "regression" in run_main("registry", cwd=repo).stdout

    # a version GTO registered by itself has no evidence: not promoted, not served
    run_tool("git", "commit", "-q", "--allow-empty", "-m", "empty", cwd=repo)
    run_tool(str(BIN / "gto"), "register", "model", "--version", "v3.0.0", cwd=repo)
    stderr = " ".join(refused(repo, "promote", "model", "v3.0.0", "--to", "staging").split())
    assert "release tag model@v3.0.0 carries no pipespec evidence (no bundle SHA-256)" in stderr
    rows = tmp_path / "rows.csv"
    rows.write_text("a\n1\n")
    proc = run_cli("predict", "--bundle", "model@v3.0.0", "--repo", str(repo), str(rows),
                   str(tmp_path / "out.csv"), cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    assert "release tag model@v3.0.0 carries no pipespec evidence" in " ".join(proc.stderr.split())
