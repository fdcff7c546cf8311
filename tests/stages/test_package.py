"""The package stage's own work beyond `bundle.assemble` (tested in tests/bundle)."""

from __future__ import annotations

import subprocess
import sys
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
