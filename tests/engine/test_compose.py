"""Composition: every option of every group, determinism, overrides, and bad configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import REPO, copy_template_project
from pipespec.core.errors import ConfigError
from pipespec.engine.compile import compile_stages, render
from pipespec.engine.compose import compose, read_overrides, strip_header
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project
from pipespec.engine.scaffold import template_root

# Values for required keys ('???') of options that declare them.
REQUIRED = {
    "dataset": ["dataset.path=data.csv", "dataset.target=y", "dataset.task=regression"],
}
OPTION_REQUIRED = {("dataset", "spark"): ["dataset.table=sales"]}  # a table or a query


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(copy_template_project(tmp_path_factory.mktemp("compose")))


def _options() -> list[tuple[str, str]]:
    configs = template_root() / "configs"
    return [
        (group.name, option.stem)
        for group in sorted(p for p in configs.iterdir() if p.is_dir())
        for option in sorted(group.glob("*.yaml"))
    ]


def test_every_group_has_options() -> None:
    groups = {g for g, _ in _options()}
    assert {"dataset", "features", "model", "evaluation", "env", "compute", "experiment"} <= groups


@pytest.mark.parametrize(("group", "option"), _options())
def test_every_option_composes_and_compiles(project: Project, group: str, option: str) -> None:
    extra = [o for o in REQUIRED.get(group, []) if option != "default"]
    extra += OPTION_REQUIRED.get((group, option), [])
    composition = compose(project, (f"{group}={option}", *extra))
    assert "${" not in composition.body
    if group == "experiment":
        assert composition.choices["experiment"] == option
    else:
        assert composition.params[group]["name"] == option
    dvc = yaml.safe_load(
        render(compile_stages(project, load_pipeline(project), composition.params))
    )
    assert list(dvc["stages"])[:2] == ["configs", "load"]
    assert all(s["cmd"].startswith("pipespec ") for s in dvc["stages"].values())


def test_repository_example_matches_the_template() -> None:
    """`pipespec init` scaffolds exactly the repository's own example project."""
    for name in ("configs", "pipelines", "schemas"):
        ours = {
            p.relative_to(REPO / name): p.read_bytes()
            for p in (REPO / name).rglob("*")
            if p.is_file() and "local" not in p.parts
        }
        theirs = {
            p.relative_to(template_root() / name): p.read_bytes()
            for p in (template_root() / name).rglob("*")
            if p.is_file() and "local" not in p.parts
        }
        assert ours == theirs, f"{name}/ differs from src/pipespec/templates/project/{name}/"


def test_same_inputs_same_bytes(project: Project) -> None:
    a = compose(project, ("model.num_leaves=63", "env=prod"))
    b = compose(project, ("model.num_leaves=63", "env=prod"))
    assert a.text == b.text
    assert read_overrides(a.text) == ("model.num_leaves=63", "env=prod")
    assert yaml.safe_load(a.text)["model"]["num_leaves"] == 63
    assert yaml.safe_load(a.text)["model"]["num_boost_round"] == 1000  # from env/prod.yaml


def test_body_is_dvcs_own_dump(project: Project) -> None:
    """The body is what DVC's Hydra composition writes (`OmegaConf.to_yaml` after resolve)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(project.configs), version_base=None):
        cfg = hydra_compose("config", overrides=["model.num_leaves=7"])
    GlobalHydra.instance().clear()
    OmegaConf.resolve(cfg)
    ours = compose(project, ("model.num_leaves=7",))
    assert strip_header(ours.text) == OmegaConf.to_yaml(cfg)


def test_hydra_grammar(project: Project) -> None:
    params = compose(project, ("+model.params.max_bin=63", "model=lightgbm_small")).params
    assert params["model"]["params"] == {"max_bin": 63}
    assert params["model"]["name"] == "lightgbm_small"
    assert params["model"]["num_leaves"] == 15


def test_delete_override(tmp_path: Path) -> None:
    root = copy_template_project(tmp_path)
    cfg = root / "configs" / "model" / "lightgbm.yaml"
    cfg.write_text(
        cfg.read_text().replace("params: {}", "params: {max_bin: 63, max_cat_to_onehot: 8}")
    )
    params = compose(Project(root), ("~model.params.max_bin",)).params
    assert params["model"]["params"] == {"max_cat_to_onehot": 8}


def test_deleting_a_schema_key_is_refused_by_name(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"split\.stratify.*'~split\.stratify'"):
        compose(project, ("~split.stratify",))


def test_interpolations_are_resolved(tmp_path: Path) -> None:
    root = copy_template_project(tmp_path)
    cfg = root / "configs" / "model" / "lightgbm.yaml"
    cfg.write_text(cfg.read_text().replace("lambda_l2: 0.0", "lambda_l2: ${model.lambda_l1}"))
    composition = compose(Project(root), ("model.lambda_l1=0.5",))
    assert "${" not in composition.text
    assert composition.params["model"]["lambda_l2"] == 0.5


@settings(max_examples=15, deadline=None)
@given(
    leaves=st.integers(2, 4096),
    rate=st.floats(0.001, 1.0, allow_nan=False),
    env=st.sampled_from(["dev", "prod"]),
)
def test_compose_is_deterministic(project: Project, leaves: int, rate: float, env: str) -> None:
    overrides = (f"model.num_leaves={leaves}", f"model.learning_rate={rate}", f"env={env}")
    first = compose(project, overrides)
    assert first.text == compose(project, overrides).text
    assert first.params["model"]["num_leaves"] == leaves
    assert first.params["env"]["name"] == env


# --- bad configs -------------------------------------------------------------------------


def test_unknown_key_in_a_file_names_key_and_file(tmp_path: Path) -> None:
    root = copy_template_project(tmp_path)
    cfg = root / "configs" / "model" / "lightgbm.yaml"
    cfg.write_text(cfg.read_text() + "num_leavs: 3\n")
    with pytest.raises(
        ConfigError, match=r"model\.num_leavs.*configs/model/lightgbm\.yaml"
    ) as info:
        compose(Project(root))
    assert "model.num_leaves" in str(info.value)  # did-you-mean


def test_wrong_type_in_override_names_key_and_override(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"model\.num_leaves.*override 'model\.num_leaves=abc'"):
        compose(project, ("model.num_leaves=abc",))


def test_wrong_type_in_a_file(tmp_path: Path) -> None:
    root = copy_template_project(tmp_path)
    cfg = root / "configs" / "compute" / "local.yaml"
    cfg.write_text(cfg.read_text().replace("num_threads: 2", "num_threads: many"))
    with pytest.raises(ConfigError, match=r"compute\.num_threads.*configs/compute/local\.yaml"):
        compose(Project(root))


def test_bad_enum_value_lists_choices(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"dataset\.task.*binary, multiclass, regression"):
        compose(project, ("dataset.task=ranking",))


def test_missing_group_option_lists_the_options(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"no option 'lightgbn' in config group 'model'") as info:
        compose(project, ("model=lightgbn",))
    assert "lightgbm, lightgbm_small" in str(info.value)
    assert "Did you mean 'model=lightgbm'" in str(info.value)


def test_missing_required_value_names_key_and_file(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"dataset\.path.*configs/dataset/csv\.yaml") as info:
        compose(project, ("dataset=csv",))
    assert "dataset.target" in str(info.value)
    assert "dataset.task" in str(info.value)


def test_malformed_override(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"malformed override 'model\.num_leaves=='"):
        compose(project, ("model.num_leaves==",))


def test_unknown_key_override_says_how_to_append(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"model\.depth") as info:
        compose(project, ("model.depth=3",))
    assert "model.max_depth" in str(info.value)


def test_yaml_syntax_error_names_file(tmp_path: Path) -> None:
    root = copy_template_project(tmp_path)
    (root / "configs" / "model" / "lightgbm.yaml").write_text("num_leaves: [1, 2\n")
    with pytest.raises(ConfigError, match=r"model/lightgbm"):
        compose(Project(root))
