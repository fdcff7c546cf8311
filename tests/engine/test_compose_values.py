"""Config values the stages used to refuse mid-run are refused at composition, naming the key
and the file or override it came from (core/value_checks.py, engine/compose.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers import copy_template_project
from pipespec.core.errors import ConfigError, StaleError
from pipespec.engine.compose import compose, strip_header
from pipespec.engine.generate import check, generate, write
from pipespec.engine.project import Project

CSV = ("dataset=csv", "dataset.path=data.csv", "dataset.target=y", "dataset.task=binary")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(copy_template_project(tmp_path_factory.mktemp("values")))


def _override(item: str) -> str:
    return re.escape(f"command-line override '{item}'")


# One bad value per key, set on the command line: (overrides, the message expected).
BAD_OVERRIDES = {
    "split.valid": (("split.valid=-0.1",), r"'split\.valid' in {0}: must be >= 0, got -0\.1"),
    "split.test": (("split.test=-0.2",), r"'split\.test' in {0}: must be >= 0, got -0\.2"),
    "split.valid+split.test": (
        ("split.valid=0.5", "split.test=0.5"),
        r"'split\.valid' in {0} and 'split\.test' in {1}: split\.valid \+ split\.test must "
        r"leave rows to train on, got 0\.5 \+ 0\.5",
    ),
    "dataset.sample.fraction": (
        ("dataset.sample.fraction=1.5",),
        r"'dataset\.sample\.fraction' in {0}: must be in \(0, 1\], got 1\.5",
    ),
    "dataset.sample.fraction=0": (
        ("dataset.sample.fraction=0",),
        r"'dataset\.sample\.fraction' in {0}: must be in \(0, 1\], got 0",
    ),
    "dataset.sample.rows": (
        ("dataset.sample.fraction=null", "dataset.sample.rows=0"),
        r"'dataset\.sample\.rows' in {1}: must be a whole number >= 1, got 0",
    ),
    "compute.workers": (
        ("compute.workers=0",),
        r"'compute\.workers' in {0}: must be a whole number >= 1, got 0",
    ),
    "compute.threads_per_worker": (
        ("compute.threads_per_worker=-1",),
        r"'compute\.threads_per_worker' in {0}: must be a whole number >= 1, got -1",
    ),
    "compute.memory_limit": (
        ("compute.memory_limit=lots",),
        r"'compute\.memory_limit' in {0}: 'lots' is not a size\n.*4GiB, 500MB",
    ),
    "compute.memory_limit=4XB": (
        ("compute.memory_limit=4XB",),
        r"'compute\.memory_limit' in {0}: '4XB' is not a size",
    ),
    "evaluation.gates": (
        ('+evaluation.gates.test.auc="high"',),
        r"'evaluation\.gates\.test\.auc' in {0}: cannot read bound 'high'\n"
        r'.*a comparison and a number, e\.g\. ">= 0\.80"',
    ),
    "model.params": (
        ("+model.params.num_leafs=3",),
        r"'model\.params\.num_leafs' in {0}: 'num_leafs' is not a LightGBM parameter\n"
        r"Did you mean .*num_leaves",
    ),
    "model.KEY": (
        ("+model.num_leavs=3",),
        r"'model\.num_leavs' in {0}: 'num_leavs' is not a LightGBM parameter\n"
        r"Did you mean .*num_leaves",
    ),
    "hparams_search.direction": (
        ("hparams_search=lightgbm_tpe", "hparams_search.direction=up"),
        r"'hparams_search\.direction' in {1}: .*'up'.*maximize, minimize",
    ),
    "hparams_search.sampler": (
        ("hparams_search=lightgbm_tpe", "hparams_search.sampler=grid"),
        r"'hparams_search\.sampler' in {1}: .*'grid'.*tpe, random",
    ),
    "features.impute": (
        ("+features.impute.tenure=mean",),
        r"'features\.impute\.tenure' in {0}: unknown strategy 'mean'\n"
        r".*median, most_frequent, constant:VALUE or a number",
    ),
    "model.class_weight": (
        ("model.class_weight=heavy",),
        r"'model\.class_weight' in {0}: must be null, 'balanced' or a mapping .*got 'heavy'",
    ),
    "model.class_weight.LABEL": (
        ("model.class_weight={1: many}",),
        r"'model\.class_weight\.1' in {0}: must be a number, got 'many'",
    ),
    "model.class_weight+regression": (
        ("model.class_weight=balanced", "dataset.task=regression"),
        r"'model\.class_weight' in {0}: applies to classification tasks only",
    ),
    "dataset.test_path+embedded": (
        ("dataset.test_path=test.csv",),
        r"'dataset\.test_path' in {0} and 'dataset\.source' in configs/dataset/default\.yaml: "
        r"dataset\.test_path needs a file source",
    ),
    "dataset.weight_path+dask": (
        ("compute=dask", "dataset.weight_path=weights.txt"),
        r"'dataset\.weight_path' in {1} and 'compute\.backend' in configs/compute/dask\.yaml: "
        r"dataset\.weight_path is not supported with compute=dask",
    ),
    "model.cv_folds+dask": (
        ("model.cv_folds=5", "compute=dask"),
        r"'model\.cv_folds' in {0} and 'compute\.backend' in configs/compute/dask\.yaml: "
        r"model\.cv_folds is not supported with compute=dask",
    ),
    "features.custom+dask": (
        ("compute=dask", "features.custom=[mine.features:Ratio]"),
        r"'features\.custom' in {1} and .*: features\.custom is not supported with compute=dask",
    ),
}


@pytest.mark.parametrize("case", list(BAD_OVERRIDES))
def test_bad_value_override_names_key_and_override(project: Project, case: str) -> None:
    overrides, pattern = BAD_OVERRIDES[case]
    with pytest.raises(ConfigError, match=pattern.format(*map(_override, overrides))):
        compose(project, overrides)


# The same keys set in a config file: (file, text to replace, replacement, overrides, message).
BAD_FILES = [
    ("config.yaml", "valid: 0.15", "valid: 0.9", (), r"'split\.valid' in configs/config\.yaml"),
    (
        "env/dev.yaml",
        "rows: 10000",
        "rows: -5",
        (),
        r"'dataset\.sample\.rows' in configs/env/dev\.yaml: must be a whole number",
    ),
    (
        "compute/dask.yaml",
        "workers: 2",
        "workers: 0",
        ("compute=dask",),
        r"'compute\.workers' in configs/compute/dask\.yaml: must be a whole number >= 1",
    ),
    (
        "compute/dask.yaml",
        "memory_limit: 4GiB",
        "memory_limit: 4 gigs",
        ("compute=dask",),
        r"'compute\.memory_limit' in configs/compute/dask\.yaml: '4 gigs' is not a size",
    ),
    (
        "evaluation/default.yaml",
        "gates: {}",
        'gates:\n  test.auc: ">= 0.8"\n  behavior.slices.a.auc: "at least 0.7"',
        (),
        r"'evaluation\.gates\.behavior\.slices\.a\.auc' in configs/evaluation/default\.yaml: "
        r"cannot read bound 'at least 0\.7'",
    ),
    (
        "model/lightgbm.yaml",
        "params: {}",
        "params: {max_bin: 63, min_sum_hessian: 1, leaves: 7}",
        (),
        r"'model\.params\.leaves' in configs/model/lightgbm\.yaml: 'leaves' is not a LightGBM",
    ),
    (
        "model/lightgbm.yaml",
        "params: {}",
        "class_weight: {0: 1, 1: lots}\nparams: {}",
        (),
        r"'model\.class_weight\.1' in configs/model/lightgbm\.yaml: must be a number",
    ),
    (
        "hparams_search/lightgbm_tpe.yaml",
        "direction: maximize",
        "direction: maximise",
        ("hparams_search=lightgbm_tpe",),
        r"'hparams_search\.direction' in configs/hparams_search/lightgbm_tpe\.yaml: "
        r".*'maximise'.*maximize, minimize",
    ),
    (
        "features/default.yaml",
        "impute: {}",
        "impute: {tenure: median, region: avg}",
        (),
        r"'features\.impute\.region' in configs/features/default\.yaml: unknown strategy 'avg'",
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "overrides", "pattern"),
    BAD_FILES,
    ids=[f"{case[0]}:{case[2].split(':')[0]}" for case in BAD_FILES],
)
def test_bad_value_in_a_file_names_key_and_file(
    tmp_path: Path, file: str, old: str, new: str, overrides: tuple[str, ...], pattern: str
) -> None:
    root = copy_template_project(tmp_path)
    path = root / "configs" / file
    text = path.read_text()
    assert old in text, f"{file} no longer has {old!r}: update the test"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=pattern):
        compose(Project(root), overrides)


def test_every_bad_value_is_reported_at_once(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"^3 invalid config values:\n") as info:
        compose(project, ("compute.workers=0", "split.test=-1", "+model.params.leafs=2"))
    message = str(info.value)
    for key in ("compute.workers", "split.test", "model.params.leafs"):
        assert f"'{key}' in command-line override" in message


def test_two_keys_that_clash_name_both_sources(project: Project) -> None:
    """env=dev caps the rows in its file; a fraction on the command line clashes with it."""
    with pytest.raises(ConfigError) as info:
        compose(project, ("dataset.sample.fraction=0.5",))
    assert (
        "'dataset.sample.fraction' in command-line override 'dataset.sample.fraction=0.5' and "
        "'dataset.sample.rows' in configs/env/dev.yaml: set dataset.sample.fraction or "
        "dataset.sample.rows, not both"
    ) in str(info.value)


def test_a_mapping_override_is_the_source_of_its_keys(project: Project) -> None:
    with pytest.raises(ConfigError, match=_override("model.class_weight={0: 1, 1: x}")):
        compose(project, ("model.class_weight={0: 1, 1: x}",))


def test_good_values_at_the_edges_compose(project: Project) -> None:
    params = compose(
        project,
        (
            "split.valid=0",
            "split.test=0.999",
            "dataset.sample.fraction=1",
            "dataset.sample.rows=null",
            "compute.memory_limit=500 MB",
            "compute.workers=1",
            "compute.threads_per_worker=1",
            '+evaluation.gates.test.auc=">= 0.8"',
            '+evaluation.gates.behavior.slices.a.auc="<0.3"',
            "+model.params.subsample=0.8",  # an alias of bagging_fraction
            "+model.params.max_bin=63",
            "model.class_weight={0: 1, 1: 2.5}",
            "+features.impute.tenure=median",
            "+features.impute.region=constant:unknown",
            "+features.impute.charges=0",
            "hparams_search=lightgbm_tpe",
            "hparams_search.direction=minimize",
            "hparams_search.sampler=random",
        ),
    ).params
    assert params["split"]["test"] == 0.999
    assert params["compute"]["memory_limit"] == "500 MB"
    assert params["evaluation"]["gates"]["test"]["auc"] == ">= 0.8"
    assert params["hparams_search"]["direction"] == "minimize"
    assert params["hparams_search"]["sampler"] == "random"
    for value in ("auto", "4GiB", "1e9", "0.5"):
        assert compose(project, (f"compute.memory_limit={value}",)).params["compute"]
    # what compute=dask refuses is fine locally
    local = compose(project, ("model.cv_folds=5", "features.custom=[mine.features:Ratio]"))
    assert local.params["model"]["cv_folds"] == 5


def test_a_test_file_is_the_test_set_so_split_test_is_not_used(project: Project) -> None:
    params = compose(project, (*CSV, "dataset.test_path=test.csv", "split.test=0.99")).params
    assert params["split"]["test"] == 0.99
    with pytest.raises(ConfigError, match=r"'split\.valid' in .*must leave rows to train on"):
        compose(project, (*CSV, "dataset.test_path=test.csv", "split.valid=1.0"))


def test_class_weight_on_regression_names_the_task(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"dataset\.task is regression"):
        compose(project, ("dataset=lightgbm_regression", "model.class_weight={1: 2}"))


def test_params_written_by_dvc_are_checked_too(tmp_path: Path) -> None:
    """`dvc exp run -S` composes with the schema but not these checks: the configs stage's
    `pipespec compose --check` refuses the params.yaml it wrote, naming the key."""
    project = Project(copy_template_project(tmp_path))
    write(project, generate(project))
    params = yaml.safe_load(strip_header(project.params_file.read_text()))
    params["compute"]["workers"] = 0
    project.params_file.write_text(yaml.safe_dump(params, sort_keys=False))  # no header
    with pytest.raises(
        ConfigError, match=r"'compute\.workers' in params\.yaml \(composed by DVC\): must be"
    ):
        check(project)
    params["compute"]["workers"] = 2
    project.params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    project.dvc_file.write_text("stages: {}\n")
    with pytest.raises(StaleError, match=r"dvc\.yaml is stale"):  # the values pass
        check(project)


def test_the_override_named_is_the_last_one_the_one_that_wins(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"override 'compute\.workers=0'") as caught:
        compose(project, ("compute=dask", "compute.workers=2", "compute.workers=0"))
    assert "compute.workers=2" not in caught.value.message
