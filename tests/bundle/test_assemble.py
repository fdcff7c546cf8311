"""Assembling a bundle from a model, its transforms and raw training rows, without a pipeline
(``pipespec.bundle.assemble``): what the package stage and other callers use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipespec.bundle import bundle as files
from pipespec.bundle.assemble import Settings, Sources, assemble
from pipespec.bundle.bundle import Bundle
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.parquet import read_table

pytestmark = pytest.mark.slow  # the trained project is a whole run (shared by the session)


def _inputs(project: Path) -> dict:
    return {
        "model_text": (project / "models" / "train" / "model.txt").read_bytes(),
        "transforms_text": (project / "models" / "featurize" / "transforms.json").read_bytes(),
        "train": read_table(project / "data" / "split" / "train.parquet")[0],
    }


def test_assembled_bundle_loads_and_predicts_as_the_packaged_one(
    trained_project: Path, tmp_path: Path
) -> None:
    inputs = _inputs(trained_project)
    target = tmp_path / "bundle"
    settings = Settings(name="churn-test", env="dev", ignored=("customer_id",))  # dataset.drop
    bundle = assemble(target, settings=settings, **inputs)
    loaded = Bundle.load(target)
    assert loaded.sha == bundle.sha
    assert sorted(p.name for p in target.iterdir()) == sorted([*files.FILES, files.MANIFEST])
    packaged = Bundle.load(trained_project / "models" / "bundle")
    # the same model, transforms and rows: the same contract and profile as the stage wrote
    assert (target / files.MODEL).read_bytes() == (packaged.path / files.MODEL).read_bytes()
    assert loaded.schema == packaged.schema
    assert loaded.profile["features"] == packaged.profile["features"]
    assert loaded.card["name"] == "churn-test"
    assert loaded.card["data"]["train"]["rows"] == len(inputs["train"])
    rows = inputs["train"].head(50)
    assert loaded.predict(rows).equals(packaged.predict(rows))
    # and a second build of the same inputs is the same bytes
    again = assemble(tmp_path / "again", settings=settings, **inputs)
    assert again.sha == bundle.sha


def test_optimized_threshold_is_picked_on_the_valid_rows(
    trained_project: Path, tmp_path: Path
) -> None:
    inputs = _inputs(trained_project)
    valid = read_table(trained_project / "data" / "split" / "valid.parquet")[0]
    settings = Settings(name="t", env="dev", threshold=0.5, optimize_threshold=True)
    bundle = assemble(tmp_path / "bundle", settings=settings, valid=valid, **inputs)
    threshold = bundle.output.threshold
    assert threshold is not None
    assert 0 < threshold < 1
    assert threshold != 0.5
    schema = json.loads((tmp_path / "bundle" / files.SCHEMA).read_text())
    assert schema["output"]["threshold"] == threshold
    assert bundle.card["model"]["threshold"] == threshold
    with pytest.raises(ConfigError, match=r"optimize_threshold needs rows: the valid rows"):
        assemble(tmp_path / "other", settings=settings, **inputs)


def test_training_rows_without_a_feature_fail_and_keep_the_old_bundle(
    trained_project: Path, tmp_path: Path
) -> None:
    target = tmp_path / "bundle"
    shutil.copytree(trained_project / "models" / "bundle", target)
    before = (target / files.MANIFEST).read_bytes()
    inputs = _inputs(trained_project)
    inputs["train"] = inputs["train"].drop(columns=["age"])
    with pytest.raises(DataError, match=r"rows of test lack feature column\(s\) age"):
        assemble(
            target,
            settings=Settings(name="t", env="dev"),
            sources=Sources(train="the rows of test"),
            **inputs,
        )
    assert (target / files.MANIFEST).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # nothing half-written


def test_a_table_above_profile_rows_is_profiled_on_a_seeded_sample(
    trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above PROFILE_ROWS training rows the schema still sees every row, the profile the
    seeded sample; the card says both counts, and the same inputs give the same bytes."""
    from pipespec.bundle import assemble as module

    inputs = _inputs(trained_project)
    rows = len(inputs["train"])
    monkeypatch.setattr(module, "PROFILE_ROWS", rows // 3)
    settings = Settings(name="t", env="dev", seed=4)
    bundle = assemble(tmp_path / "bundle", settings=settings, **inputs)
    profile = bundle.profile
    assert profile["rows"] == rows // 3
    assert {f["rows"] for f in profile["features"].values()} == {rows // 3}
    assert profile["prediction"]["rows"] == rows // 3
    assert bundle.card["data"]["train"]["profiled_rows"] == rows // 3
    assert bundle.card["data"]["train"]["rows"] == rows
    sample = module._sample(inputs["train"], rows // 3, 4)
    whole = assemble(tmp_path / "whole", settings=settings, **{**inputs, "train": sample})
    # the profile is that of the sample alone; the schema (ranges, categories) of every row
    assert whole.profile["features"] == profile["features"]
    again = assemble(tmp_path / "again", settings=settings, **inputs)
    assert again.sha == bundle.sha
    monkeypatch.setattr(module, "PROFILE_ROWS", rows)
    unsampled = assemble(tmp_path / "unsampled", settings=settings, **inputs)
    assert unsampled.schema == bundle.schema
    assert unsampled.profile["rows"] == rows
