"""``compose``, ``show``, ``dag``, ``diff``, ``run``'s refusals and ``init``, in-process: bad
configs fail at composition with exit 2 and change nothing (no stage runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import run_main


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("model.num_leavs=3", r"model\.num_leavs"),
        ("model.num_leaves=abc", r"model\.num_leaves.*model\.num_leaves=abc"),
        ("model=nope", r"Available options in 'model': lightgbm, lightgbm_small"),
        ("model.num_leaves==", r"malformed override"),
        ("dataset=csv", r"dataset\.path.*configs/dataset/csv\.yaml"),
    ],
)
def test_bad_config_exits_2_and_changes_nothing(
    fresh_project: Path, override: str, match: str
) -> None:
    root = fresh_project
    params, dvc = (root / "params.yaml").read_bytes(), (root / "dvc.yaml").read_bytes()
    for command in ("compose", "run"):
        result = run_main(command, override, cwd=root, check=False)
        assert result.returncode == 2, result.stderr
        assert re.search("(?s)" + match, result.stderr), result.stderr
        assert "Traceback" not in result.stderr
    assert (root / "params.yaml").read_bytes() == params
    assert (root / "dvc.yaml").read_bytes() == dvc
    assert not (root / "dvc.lock").exists()


def test_run_refuses_a_bad_value_before_any_stage(fresh_project: Path) -> None:
    root = fresh_project
    params, dvc = (root / "params.yaml").read_bytes(), (root / "dvc.yaml").read_bytes()
    result = run_main("run", "dataset.rows=500", "compute.workers=0", cwd=root, check=False)
    assert result.returncode == 2, result.stderr
    assert (
        "'compute.workers' in command-line override 'compute.workers=0': "
        "must be a whole number >= 1, got 0"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert "Running stage" not in result.stdout + result.stderr
    assert not (root / "dvc.lock").exists()
    assert not (root / "data").exists() or not any((root / "data").rglob("*.parquet"))
    assert not (root / ".pipespec" / "runs").exists()
    assert (root / "params.yaml").read_bytes() == params
    assert (root / "dvc.yaml").read_bytes() == dvc


def test_bad_config_file_names_the_file(new_project) -> None:
    root = new_project()
    params = (root / "params.yaml").read_bytes()
    cfg = root / "configs" / "model" / "lightgbm.yaml"
    cfg.write_text(cfg.read_text() + "num_leavs: 3\n")
    result = run_main("run", cwd=root, check=False)
    assert result.returncode == 2
    assert "model.num_leavs" in result.stderr
    assert "configs/model/lightgbm.yaml" in result.stderr
    assert (root / "params.yaml").read_bytes() == params


def test_show_writes_nothing_and_prints_what_compose_writes(fresh_project: Path) -> None:
    root = fresh_project
    params = (root / "params.yaml").read_bytes()
    result = run_main("show", "model.num_leaves=5", cwd=root)
    assert "num_leaves: 5" in result.stdout
    assert '# overrides: ["model.num_leaves=5"]' in result.stdout
    assert (root / "params.yaml").read_bytes() == params
    assert run_main("show", cwd=root).stdout == params.decode()  # piped: the exact bytes


def test_compose_check_is_3_naming_the_stale_file(new_project) -> None:
    root = new_project()
    result = run_main("compose", "--check", cwd=root)
    assert result.stderr == "params.yaml and dvc.yaml are up to date\n"
    assert run_main("compose", cwd=root).stderr == "params.yaml and dvc.yaml already up to date\n"
    cfg = root / "configs" / "model" / "lightgbm.yaml"
    cfg.write_text(cfg.read_text().replace("num_leaves: 31", "num_leaves: 30"))
    result = run_main("compose", "--check", "model.num_leaves=9", cwd=root, check=False)
    assert result.returncode == 3
    assert "note: --check uses the overrides recorded in params.yaml" in result.stderr
    assert "params.yaml is stale" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_main("compose", cwd=root).stderr == "wrote params.yaml\n"


def test_dag_draws_every_stage(fresh_project: Path) -> None:
    result = run_main("dag", cwd=fresh_project)
    for name in ("load", "split", "featurize", "train", "evaluate"):
        assert name in result.stdout
    out = result.stdout
    assert out.index("load") < out.index("split") < out.index("evaluate")


def test_diff_of_an_unknown_revision_is_a_git_error(fresh_project: Path) -> None:
    result = run_main("diff", "NOPE", "HEAD", cwd=fresh_project, check=False)
    assert result.returncode == 6
    assert "error: git cannot read revision 'NOPE'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_project_folder_given_with_C(fresh_project: Path, tmp_path: Path) -> None:
    assert "train" in run_main("-C", str(fresh_project), "dag", cwd=tmp_path).stdout
    result = run_main("-C", str(tmp_path / "nowhere"), "dag", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "no pipespec project" in result.stderr


def test_stage_needs_a_name(fresh_project: Path) -> None:
    result = run_main("stage", cwd=fresh_project, check=False)
    assert result.returncode == 2
    assert "the following arguments are required: name" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--check", "docker"), "--check takes no TARGET: it checks every target in exports.yaml"),
        (("docker", "--group-by", "file"), "--group-by applies to the airflow target only"),
        ((), "nothing to export again: no target recorded in exports.yaml"),
        (("airflow", "--group-by", "day"), "argument --group-by: invalid choice: 'day'"),
    ],
)
def test_export_refusals(fresh_project: Path, args: tuple[str, ...], message: str) -> None:
    result = run_main("export", *args, cwd=fresh_project, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (fresh_project / "exports.yaml").exists()


def test_export_check_with_nothing_exported(fresh_project: Path) -> None:
    result = run_main("export", "--check", cwd=fresh_project)
    assert result.stderr == "nothing exported yet (exports.yaml is absent)\n"
