"""The registry's config and the pieces that need no git: composition errors, the compiled
`artifacts:` section, versions and their bumps, GTO's tag grammar, behaviour reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import copy_template_project
from pipespec.core.errors import ConfigError
from pipespec.engine.compile import compile_stages, render
from pipespec.engine.compose import compose
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project
from pipespec.engine.registry import (
    TAG,
    Version,
    behavior_passed,
    bump,
    failed_checks,
    normalize_version,
    split_message,
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


def test_evidence_round_trips_through_the_message() -> None:
    text, evidence = split_message('Registering\n\nnotes\n\npipespec evidence (JSON):\n{"a": 1}\n')
    assert (text, evidence) == ("Registering\n\nnotes", {"a": 1})
    assert split_message("made by gto") == ("made by gto", {})


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
