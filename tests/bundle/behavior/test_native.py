"""Scoring through LightGBM's C library without the ``lightgbm`` package
(``bundle/behavior/native.py``) gives exactly what ``Booster.predict`` gives, for each kind of
model and matrix, and a fresh process that scores a bundle so imports neither lightgbm nor
scipy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from pipespec.bundle.behavior import native
from pipespec.bundle.booster import ROWS
from pipespec.bundle.bundle import Bundle
from pipespec.core.errors import BundleError
from pipespec.stages.parquet import read_table


def _model(objective: str, names: list[str] | None = None, **params: object) -> lgb.Booster:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 4] = rng.integers(0, 4, size=len(x))  # a categorical column: codes
    y = {
        "binary": (np.nan_to_num(x[:, 0]) > 0).astype(int),
        "multiclass": np.digitize(np.nan_to_num(x[:, 1]), [-0.5, 0.5]),
        "regression": np.nan_to_num(x[:, 2]) * 3.0,
    }[objective]
    data = lgb.Dataset(x, y, feature_name=names or "auto", categorical_feature=[4])
    settings = {"objective": objective, "verbose": -1, "num_leaves": 7, **params}
    return lgb.train(settings, data, num_boost_round=15)


@pytest.mark.parametrize(
    ("objective", "params"),
    [("binary", {}), ("multiclass", {"num_class": 3}), ("regression", {})],
)
def test_every_matrix_scores_bit_for_bit_as_booster_predict(objective: str, params: dict) -> None:
    booster = _model(objective, **params)
    ours = native.NativeBooster(booster.model_to_string())
    assert (ours.num_feature(), ours.num_model_per_iteration()) == (
        booster.num_feature(),
        booster.num_model_per_iteration(),
    )
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(3000, 5)) * 2
    rows[rng.random(rows.shape) < 0.2] = np.nan
    rows[:, 4] = rng.integers(0, 6, size=len(rows))  # codes, some unseen in training
    theirs = lgb.Booster(model_str=booster.model_to_string())  # as Bundle.booster loads it
    for matrix in (np.asfortranarray(rows), rows, rows.astype(np.float32), rows[::2]):
        for threads in (1, 2):
            got, expected = (
                ours.predict(matrix, num_threads=threads),
                theirs.predict(matrix, num_threads=threads),
            )
            assert got.shape == expected.shape
            assert got.tobytes() == expected.tobytes()
    fast = native.NativeRowPredictor(ours)
    for n in (1, ROWS):
        got = fast.predict(np.asfortranarray(rows[:n]))
        assert got is not None
        assert got.tobytes() == theirs.predict(rows[:n], num_threads=1).tobytes()


def test_feature_names_of_any_length_and_a_broken_model_named() -> None:
    names = ["a", "b c", "x" * 300, "d", "é"]  # one longer than the first buffers
    booster = _model("regression", names=names)
    assert native.NativeBooster(booster.model_to_string()).feature_name() == booster.feature_name()
    with pytest.raises(
        native.NativeError, match=r"Model file doesn.t specify the number of classes"
    ):
        native.NativeBooster("not a model\n")
    with pytest.raises(ValueError, match="expected a 2-dimensional matrix"):
        native.NativeBooster(booster.model_to_string()).predict(np.zeros(5), num_threads=1)


def test_a_native_bundle_predicts_exactly_what_the_bundle_predicts(
    trained_project: Path, tmp_path: Path
) -> None:
    bundle = Bundle.load(trained_project / "models" / "bundle")
    assert native.scoring(bundle) is bundle  # lightgbm is imported here: nothing to save
    fields = {f: getattr(bundle, f) for f in bundle.__dataclass_fields__}
    ours = native.NativeBundle(**fields)
    frame, _ = read_table(trained_project / "data" / "split" / "test.parquet")
    inputs = frame.drop(columns=[str(bundle.output.target)])
    for rows in (inputs, inputs.iloc[:1], inputs.iloc[:ROWS]):
        pd.testing.assert_frame_equal(
            ours.predict(rows, on_invalid="skip", threads=2),
            bundle.predict(rows, on_invalid="skip", threads=2),
            check_exact=True,
        )
    assert ours.row_predictor is not None
    broken = native.NativeBundle(**{**fields, "model_text": "version=v4\nnot a model\n"})
    with pytest.raises(BundleError, match=r"LightGBM cannot read model\.txt: "):
        broken.booster  # noqa: B018


def test_a_process_scoring_a_bundle_imports_neither_lightgbm_nor_scipy(
    trained_project: Path,
) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipespec.bundle.behavior import native\n"
        "from pipespec.bundle.bundle import Bundle\n"
        "from pipespec.stages.parquet import read_table\n"
        f"bundle = native.scoring(Bundle.load({str(trained_project / 'models' / 'bundle')!r}))\n"
        f"frame, _ = read_table(Path({str(trained_project / 'data/split/test.parquet')!r}))\n"
        "out = bundle.predict(frame.iloc[:50], on_invalid='skip')\n"
        "print(type(bundle).__name__, len(out), sorted(m for m in ('lightgbm', 'scipy', "
        "'sklearn') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(native.__file__).parents[3])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "NativeBundle 50 []"
