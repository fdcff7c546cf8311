"""The registry's config and the pieces that need no git: composition errors, the compiled
`artifacts:` section, versions and their bumps, GTO's tag grammar, behaviour reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import copy_template_project
from pipespec.core.errors import ConfigError, EvidenceError
from pipespec.engine.compile import compile_stages, render
from pipespec.engine.compose import compose
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project
from pipespec.engine.registry import (
    TAG,
    Version,
    behavior_evidence,
    behavior_passed,
    bump,
    contract_changes,
    contract_line,
    failed_checks,
    normalize_version,
    parse_message,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(copy_template_project(tmp_path_factory.mktemp("registry")))


def _dvc_yaml(project: Project, *overrides: str) -> dict:
    params = compose(project, overrides).params
    return yaml.safe_load(render(compile_stages(project, load_pipeline(project, params), params)))


def test_dvc_yaml_declares_the_artifact(project: Project) -> None:
    artifacts = _dvc_yaml(project, "registry.artifact=churn-model")["artifacts"]
    assert list(artifacts) == ["churn-model"]
    assert artifacts["churn-model"]["path"] == "models/bundle"
    assert artifacts["churn-model"]["type"] == "model"


def test_a_bad_artifact_name_is_refused_by_key(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"registry\.artifact: 'churn model!' is not a valid"):
        _dvc_yaml(project, "registry.artifact='churn model!'")


def test_a_bad_evidence_name_fails_at_composition(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"registry\.stages\.prod\.requires"):
        compose(project, ("registry.stages.prod.requires=[gate,vibes]",))


def test_a_mistyped_stage_key_in_the_file_names_key_and_file(tmp_path: Path) -> None:
    root = copy_template_project(tmp_path)
    config = root / "configs" / "registry" / "default.yaml"
    config.write_text(config.read_text().replace("from_stage: staging", "form_stage: staging"))
    with pytest.raises(ConfigError, match=r"registry\.stages\.prod\.form_stage.*registry"):
        compose(Project(root))


def _v(version: str) -> Version:
    return Version("model", version, "c" * 40, f"model@{version}", 0, "", "", {})


def test_versions_bump_from_the_greatest() -> None:
    assert bump([], "patch") == "v0.0.1"
    assert bump([], "major") == "v1.0.0"
    released = [_v("v1.2.3"), _v("v0.9.9")]
    assert bump(released, "patch") == "v1.2.4"
    assert bump(released, "minor") == "v1.3.0"
    assert bump(released, "major") == "v2.0.0"
    assert normalize_version("1.2.3") == "v1.2.3"
    with pytest.raises(ConfigError, match=r"version '1\.2' is not a semantic version"):
        normalize_version("1.2")


def test_tag_grammar_is_gtos() -> None:
    assert TAG.match("model@v1.2.3")["version"] == "v1.2.3"  # type: ignore[index]
    stage = TAG.match("model#prod#12")
    assert stage is not None
    assert (stage["stage"], stage["counter"]) == ("prod", "12")
    assert TAG.match("model#prod!#13")["cancel"] == "!"  # type: ignore[index]
    assert TAG.match("model@1.2.3") is None  # GTO needs the 'v'
    assert TAG.match("v1.2.3") is None


SHA = "ab" * 32
MARKER = "pipespec evidence (JSON):"


def test_evidence_round_trips_through_the_message() -> None:
    message = f'Registering\n\nnotes\n\n{MARKER}\n{{"bundle": {{"sha256": "{SHA}"}}}}\n'
    text, evidence = parse_message("model@v1.0.0", message)
    assert (text, evidence) == ("Registering\n\nnotes", {"bundle": {"sha256": SHA}})
    assert parse_message("model@v1.0.0", "made by gto") == ("made by gto", {})


def test_a_message_cannot_forge_or_hide_the_evidence() -> None:
    """The human text comes first; the evidence is the block after the LAST marker."""
    real = f'{MARKER}\n{{"bundle": {{"sha256": "{SHA}"}}, "commit": "{"c" * 40}"}}\n'
    for human in (
        f'{MARKER}\n{{"bundle": {{"sha256": "{"0" * 64}"}}}}',  # forged evidence
        f"{MARKER}\nnot json at all",  # would have made the old parser fall back to {{}}
        f"{MARKER}",
        '{"gate": null}',
    ):
        text, evidence = parse_message("model@v1.0.0", f"Registering\n\n{human}\n\n{real}")
        assert evidence["bundle"]["sha256"] == SHA
        assert text == f"Registering\n\n{human}"


def test_evidence_that_does_not_parse_is_an_error_naming_the_tag() -> None:
    with pytest.raises(
        EvidenceError, match=r"release tag model@v1\.0\.0: its evidence .* does not parse"
    ):
        parse_message("model@v1.0.0", f"x\n{MARKER}\n{{broken")
    with pytest.raises(EvidenceError, match=r"model@v1\.0\.0: its evidence is not a JSON object"):
        parse_message("model@v1.0.0", f"x\n{MARKER}\n[1, 2]")
    with pytest.raises(
        EvidenceError, match=r"model@v1\.0\.0: its evidence lacks the bundle's SHA-256"
    ):
        parse_message("model@v1.0.0", f'x\n{MARKER}\n{{"gate": {{}}}}')
    with pytest.raises(
        EvidenceError, match=r"names commit cccccccccccc, but the tag points to dddd"
    ):
        parse_message(
            "model@v1.0.0",
            f'x\n{MARKER}\n{{"bundle": {{"sha256": "{SHA}"}}, "commit": "{"c" * 40}"}}',
            "d" * 40,
        )
    # a version without evidence (a tag GTO made) is refused where evidence is needed
    with pytest.raises(
        EvidenceError, match=r"release tag model@v1\.0\.0 carries no pipespec evidence"
    ):
        _v("v1.0.0").checked_evidence()


def test_contract_differences_are_named() -> None:
    binary = {
        "task": "binary",
        "classes": ["no", "yes"],
        "outputs": ["label", "probability", "probabilities"],
        "inputs": {"age": "numeric", "plan": "categorical"},
    }
    regression = {
        "task": "regression",
        "classes": [],
        "outputs": ["value"],
        "inputs": {"age": "categorical", "income": "numeric"},
    }
    assert contract_changes(binary, dict(binary)) == []
    assert contract_changes(binary, regression) == [
        "task 'binary' -> 'regression'",
        "classes ['no', 'yes'] -> []",
        "outputs ['label', 'probability', 'probabilities'] -> ['value']",
        "new required inputs: income (numeric)",
        "inputs no longer read: plan",
        "input types changed: age numeric -> categorical",
    ]
    assert (
        contract_line(binary) == "binary [no, yes] -> label, probability, probabilities; 2 inputs"
    )
    assert contract_line(None) == "-"


def test_behavior_evidence_counts_are_true() -> None:
    """metrics/behavior.json's 'passed' is a 0/1 verdict; the evidence counts checks."""
    summary = behavior_evidence({"behavior": {"passed": 1, "checks": 2, "failed": 0}})
    assert summary is not None
    assert (summary["checks"], summary["passed"], summary["failed"]) == (2, 2, 0)
    assert summary["all_passed"] is True
    failed = behavior_evidence({"behavior": {"passed": 0, "checks": 8, "failed": 2}})
    assert failed is not None
    assert (failed["passed"], failed["failed"], failed["all_passed"]) == (6, 2, False)
    assert not behavior_passed(failed)
    assert failed_checks(failed) == ["2 of 8 checks"]
    assert behavior_evidence(None) is None


def test_behavior_reports() -> None:
    assert behavior_passed({"passed": True})
    # the behavior stage's metrics/behavior.json: the verdict under "behavior", passed as 0/1
    assert behavior_passed({"behavior": {"passed": 1, "checks": 8, "failed": 0}})
    assert not behavior_passed({"behavior": {"passed": 0, "checks": 8, "failed": 2}})
    assert failed_checks({"behavior": {"passed": 0, "checks": 8, "failed": 2}}) == ["2 of 8 checks"]
    assert not behavior_passed({"passed": False})
    assert not behavior_passed({"checks_failed": 2})
    report = {"checks": [{"name": "slice.young", "passed": True}, {"name": "inv", "passed": False}]}
    assert not behavior_passed(report)
    assert failed_checks(report) == ["inv"]
