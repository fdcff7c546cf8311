"""The package stage's own work beyond `bundle.assemble` (tested in tests/bundle)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipespec.stages.package import _input_names


def test_lightgbm_is_imported_without_scikit_learn_which_stays_importable() -> None:
    """The stage imports LightGBM without its scikit-learn API (most of its import time);
    scikit-learn itself still imports afterwards (evaluation.optimize_threshold uses it)."""
    code = (
        "import sys\n"
        "from pipespec.bundle.engine import import_lightgbm\n"
        "import_lightgbm()\n"
        "import lightgbm\n"
        "print('sklearn' in sys.modules, lightgbm.compat.SKLEARN_INSTALLED)\n"
        "from sklearn.metrics import precision_recall_curve\n"
        "print(callable(precision_recall_curve))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False", "True"]


def test_calibration_reuses_the_threshold_s_scores_and_reads_only_the_bundle_s_columns(
    trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With evaluation.optimize_threshold the valid rows are scored whole for the threshold;
    the monitor's calibration takes its sample's scores from those. Its figures are those of
    the sample checked and scored on its own. The stage reads only the valid columns the
    bundle checks (and the target)."""
    from pipespec.bundle import assemble
    from pipespec.bundle.profile import CALIBRATION, calibration
    from pipespec.stages.package import _valid_rows
    from pipespec.stages.parquet import read_table

    root = trained_project
    transforms_text = (root / "models/featurize/transforms.json").read_bytes()
    train, _ = read_table(root / "data/split/train.parquet")
    full, _ = read_table(root / "data/split/valid.parquet")
    full.insert(0, "note", "unread")  # a column the bundle does not check
    full.to_parquet(tmp_path / "valid.parquet", index=False)
    valid = _valid_rows(tmp_path / "valid.parquet", _input_names(transforms_text),
                        transforms_text)  # fmt: skip
    assert list(valid.columns) == list(full.columns[1:])
    monkeypatch.setattr(assemble, "CALIBRATION_ROWS", len(valid) // 3)  # a sample is drawn
    settings = assemble.Settings(name="t", env="dev", optimize_threshold=True, seed=5)
    bundle = assemble.assemble(
        tmp_path / "bundle",
        model_text=(root / "models/train/model.txt").read_bytes(),
        transforms_text=transforms_text,
        train=train,
        settings=settings,
        valid=valid,
    )
    held = assemble._sample(valid, len(valid) // 3, 5)
    checked = bundle.check(held)
    expected = calibration(bundle.profile, checked, bundle.score(checked), "binary",
                           bundle.classes, "valid")  # fmt: skip
    assert bundle.profile[CALIBRATION] == expected
    assert expected["rows"] == len(valid) // 3


def test_only_the_calibration_sample_of_the_valid_rows_is_read_and_the_bundle_is_the_same(
    trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a threshold to pick, the stage turns only the calibration's seeded sample of
    the valid rows into pandas (``assemble.sample_positions``): the rows ``assemble`` itself
    draws from all of them, so the bundle's bytes are those of a bundle given every row."""
    from pipespec.bundle import assemble
    from pipespec.stages.package import _valid_rows
    from pipespec.stages.parquet import read_table

    root = trained_project
    transforms_text = (root / "models/featurize/transforms.json").read_bytes()
    path = root / "data/split/valid.parquet"
    full, _ = read_table(path)
    rows = len(full) // 3
    monkeypatch.setattr(assemble, "CALIBRATION_ROWS", rows)
    drawn = assemble.sample_positions(len(full), rows, 7)
    assert list(drawn) == list(assemble._sampled_rows(full, rows, 7))  # type: ignore[arg-type]
    sampled = _valid_rows(path, _input_names(transforms_text), transforms_text, 7)
    assert len(sampled) == rows
    expected = assemble._sample(full, rows, 7).reset_index(drop=True)
    assert sampled[expected.columns].equals(expected)

    train, _ = read_table(root / "data/split/train.parquet")
    made = {
        name: _assembled(root, tmp_path / name, train, valid)
        for name, valid in (("whole", full), ("sampled", sampled))
    }
    assert made["whole"].profile["calibration"]["rows"] == rows  # type: ignore[attr-defined]
    assert made["sampled"].sha == made["whole"].sha  # type: ignore[attr-defined]
    # read by ``assemble`` itself, beside the profile's work: the same bundle
    seen: list[str] = []

    def read() -> object:
        seen.append(threading.current_thread().name)
        return sampled

    deferred = _assembled(root, tmp_path / "deferred", train, read)
    assert deferred.sha == made["whole"].sha  # type: ignore[attr-defined]
    assert len(seen) == 1
    assert seen != [threading.main_thread().name]
    empty = _assembled(root, tmp_path / "empty", train, lambda: sampled.iloc[:0])
    assert "calibration" not in empty.profile  # type: ignore[attr-defined]


def _assembled(root: Path, target: Path, train: object, valid: object = None) -> object:
    """``assemble`` of the trained project's model and transforms on these rows (seed 7)."""
    from pipespec.bundle import assemble

    return assemble.assemble(
        target,
        model_text=(root / "models/train/model.txt").read_bytes(),
        transforms_text=(root / "models/featurize/transforms.json").read_bytes(),
        train=train,
        settings=assemble.Settings(name="t", env="dev", seed=7),
        valid=valid,
    )


def test_input_hashes_are_waited_for_when_read_and_an_unreadable_input_fails_then(
    tmp_path: Path,
) -> None:
    """The inputs are hashed beside the stage's work; the first look at the hashes waits
    for them, and an input that cannot be read fails there with the stage's message."""
    from concurrent.futures import ThreadPoolExecutor

    from pipespec.core.errors import StageError
    from pipespec.stages.package import _Hashes, _sha

    (tmp_path / "model.txt").write_bytes(b"tree")
    with ThreadPoolExecutor(max_workers=1) as pool:
        good = _Hashes({"model": pool.submit(_sha, tmp_path / "model.txt")})
        assert len(good) == 1
        assert dict(good) == {"model": hashlib.sha256(b"tree").hexdigest()}
        bad = _Hashes({"train": pool.submit(_sha, tmp_path / "missing.parquet")})
        assert len(bad) == 1  # counting does not wait
        with pytest.raises(StageError, match=r"cannot read input .*missing\.parquet"):
            bad.get("train")


def test_a_bundle_from_the_training_rows_as_arrow_is_the_one_from_pandas(
    trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage hands ``assemble`` the training rows as Arrow (no pandas frame of all of
    them): the bundle's bytes are those the same rows as a pandas frame give, and so are
    the numeric columns ``coerce_numeric`` names."""
    from pipespec.bundle import assemble
    from pipespec.core.documents import ReadOptions
    from pipespec.stages.package import _training_rows, numeric_reading
    from pipespec.stages.parquet import read_table

    root = trained_project
    transforms_text = (root / "models/featurize/transforms.json").read_bytes()
    path = root / "data/split/train.parquet"
    table, rows, _ = _training_rows(path, seed=0, needed=_input_names(transforms_text))
    frame, _ = read_table(path, columns=list(table.column_names))
    assert rows == len(frame)
    reading = ReadOptions()
    assert numeric_reading(reading, table) == numeric_reading(reading, frame)
    monkeypatch.setattr(assemble, "PROFILE_ROWS", rows // 3)  # a sample is drawn
    settings = assemble.Settings(name="t", env="dev", seed=3)
    made = [
        assemble.assemble(
            tmp_path / str(i),
            model_text=(root / "models/train/model.txt").read_bytes(),
            transforms_text=transforms_text,
            train=train,
            settings=settings,
        )
        for i, train in enumerate((table, frame))
    ]
    assert made[0].sha == made[1].sha
    assert made[0].card["data"]["train"]["profiled_rows"] == rows // 3


def test_training_rows_read_a_row_group_at_a_time_make_the_bundle_the_whole_table_makes(
    trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training table longer than the profile's sample is read a row group at a time
    (``_TrainingRows``): its float columns' ranges found group by group, a zero extreme
    found on the column read again, the other columns and the sample as the whole table
    gives them. The schema, the sample and the bundle's bytes are those of the whole table
    read at once; the valid rows' sample too."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipespec.bundle import assemble
    from pipespec.bundle.inputs import FloatColumn, infer
    from pipespec.bundle.transforms import load
    from pipespec.stages.package import _training_rows, _TrainingRows, _valid_rows
    from pipespec.stages.parquet import read_arrow, read_table

    root = trained_project
    transforms_text = (root / "models/featurize/transforms.json").read_bytes()
    transforms = load(json.loads(transforms_text))
    floats = [c.name for c in transforms.inputs if c.type == "numeric"]
    full, _ = read_table(root / "data/split/train.parquet")
    full[floats[0]] = full[floats[0]].astype("float64")
    full.loc[3, floats[0]] = 0.0  # a zero extreme: numpy's answer, on the column read again
    full.loc[[4, len(full) - 1], floats[-1]] = np.nan
    path = tmp_path / "train.parquet"
    groups = 5
    table = pa.Table.from_pandas(full, preserve_index=False)
    pq.write_table(table, path, row_group_size=len(full) // groups + 1)
    assert pq.ParquetFile(path).metadata.num_row_groups == groups
    monkeypatch.setattr(assemble, "PROFILE_ROWS", len(full) // 3)

    needed = _input_names(transforms_text)
    rows, count, columns = _training_rows(path, seed=7, needed=needed)
    assert isinstance(rows, _TrainingRows)
    assert (count, columns) == (len(full), len(full.columns))
    assert isinstance(rows[floats[0]], FloatColumn)
    assert rows[floats[0]].range.lo == 0.0
    whole = read_arrow(path, rows.columns)
    as_table = assemble.TableRows(whole)
    assert infer(rows, transforms, range_margin=0.5, ignored=[]) == infer(
        as_table, transforms, range_margin=0.5, ignored=[]
    )
    assert rows.sample(assemble.PROFILE_ROWS, 7).equals(as_table.sample(assemble.PROFILE_ROWS, 7))
    with pytest.raises(ValueError, match="seed"):
        rows.sample(assemble.PROFILE_ROWS, 8)

    made = {name: _assembled(root, tmp_path / name, train)
            for name, train in (("groups", rows), ("whole", whole))}  # fmt: skip
    assert made["groups"].sha == made["whole"].sha  # type: ignore[attr-defined]

    monkeypatch.setattr(assemble, "CALIBRATION_ROWS", len(full) // 4)
    sampled = _valid_rows(path, needed, transforms_text, 7)
    expected = assemble._sample(full, len(full) // 4, 7).reset_index(drop=True)
    assert sampled.equals(expected[sampled.columns])
