"""`production.engine: lleaves`: a `compile` stage compiles a tiny model (8 trees, 7 leaves)
trained on the real Adult census data, checks it against booster.predict, and a real
`pipespec serve` uses it, or falls back to LightGBM and says so in /health and /metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import records, start_server

from helpers import REPO, run_cli, shared

pytestmark = pytest.mark.slow

COMPILED_PIPELINE = """stages:
  compile:
    kind: compile
    inputs:
      bundle: package.bundle
      data: split.valid
"""
TINY = ("dataset=adult", "model.num_boost_round=8", "model.num_leaves=7")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project on the Adult data run with production.engine=lleaves."""
    shared("adult", "adult.data")
    base = tmp_path_factory.mktemp("compiled")
    root = base / "proj"
    run_cli("init", str(root), cwd=base)
    (root / "pipelines" / "compiled.yaml").write_text(COMPILED_PIPELINE)
    run_cli("run", *TINY, "production.engine=lleaves", cwd=root)
    return root


def test_the_compile_stage_matches_booster_predict(compiled: Path) -> None:
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.engine import select

    key = json.loads((compiled / "models" / "compiled" / "key.json").read_text())
    assert key["engine"] == "lleaves"
    assert key["max_abs_diff"] <= 1e-9
    assert key["checked_rows"] > 1000
    assert set(key["key"]) == {"model_sha256", "cpu", "cpu_features", "llvmlite", "lleaves"}
    metrics = json.loads((compiled / "metrics" / "compile.json").read_text())
    assert metrics["engine"] == "lleaves"
    assert metrics["max_abs_diff"] <= 1e-9
    assert "compile" in (compiled / "dvc.yaml").read_text()  # a stage of its own, DVC-tracked

    # the predict path itself, on the real test file: compiled scores == LightGBM's
    rows = pd.read_parquet(compiled / "data" / "split" / "test.parquet")
    plain = Bundle.load(compiled / "models" / "bundle").predict(rows, on_invalid="skip")
    fast = Bundle.load(compiled / "models" / "bundle")
    engine = select(fast)
    assert engine.status() == {
        "name": "lleaves",
        "requested": "lleaves",
        "fallback": False,
        "reason": "",
    }
    got = fast.predict(rows, on_invalid="skip")
    assert len(got) == len(plain) > 1000
    diff = np.max(np.abs(got["prediction"].to_numpy() - plain["prediction"].to_numpy()))
    assert diff <= 1e-9


def test_the_bundle_does_not_depend_on_the_engine(compiled: Path) -> None:
    """The engine stays out of the bundle: the card records no production.engine."""
    card = json.loads((compiled / "models" / "bundle" / "card.json").read_text())
    assert "engine" not in card["params"]["production"]
    assert not list((compiled / "models" / "bundle").glob("*.so"))


def _serve_and_read(bundle: Path, workdir: Path) -> tuple[dict, str, dict]:
    server = start_server(bundle, workdir)
    try:
        rows = pd.read_parquet(bundle.parent.parent / "data" / "split" / "test.parquet")
        record = records(rows.drop(columns=["income"]).head(1))[0]
        answer = server.client.post("/predict", json=record)
        assert answer.status_code == 200, answer.text
        health = server.client.get("/health").json()
        metrics = server.client.get("/metrics").text
        return health, metrics, answer.json()
    finally:
        server.stop()


def test_the_server_reports_the_engine_and_falls_back_on_a_key_mismatch(
    compiled: Path, tmp_path: Path
) -> None:
    health, metrics, fast = _serve_and_read(compiled / "models" / "bundle", tmp_path)
    assert health["engine"] == {
        "name": "lleaves",
        "requested": "lleaves",
        "fallback": False,
        "reason": "",
    }
    assert 'pipespec_engine_info{engine="lleaves",requested="lleaves",fallback="false"' in metrics

    # the same bundle with a compiled cache whose key names another llvmlite
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    shutil.copytree(compiled / "models", other / "models")
    shutil.copytree(compiled / "data" / "split", other / "data" / "split")
    key_file = other / "models" / "compiled" / "key.json"
    key = json.loads(key_file.read_text())
    key["key"]["llvmlite"] = "0.0.1"
    key_file.write_text(json.dumps(key))
    health, metrics, slow = _serve_and_read(other / "models" / "bundle", tmp_path)
    assert health["engine"] == {
        "name": "lightgbm",
        "requested": "lleaves",
        "fallback": True,
        "reason": "the compiled model's key differs in llvmlite",
    }
    assert 'pipespec_engine_info{engine="lightgbm",requested="lleaves",fallback="true"' in metrics
    assert fast.keys() == slow.keys()
    assert np.max(np.abs(np.subtract(_numbers(fast), _numbers(slow)))) <= 1e-9


def _numbers(answer: object) -> list[float]:
    """Every float in a JSON answer, in order."""
    if isinstance(answer, dict):
        return [x for key in sorted(answer) for x in _numbers(answer[key])]
    if isinstance(answer, list):
        return [x for item in answer for x in _numbers(item)]
    return [answer] if isinstance(answer, float) else []


def test_a_changed_object_file_falls_back(compiled: Path, tmp_path: Path) -> None:
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.engine import select

    cache = tmp_path / "cache"
    shutil.copytree(compiled / "models" / "compiled", cache)
    (cache / "model.so").write_bytes(b"\0" * 16)
    engine = select(Bundle.load(compiled / "models" / "bundle"), cache)
    assert (engine.name, engine.requested) == ("lightgbm", "lleaves")
    assert engine.reason == f"{cache / 'model.so'} does not match its key (changed after compiling)"
    absent = select(Bundle.load(compiled / "models" / "bundle"), tmp_path / "none")
    assert (absent.name, absent.requested) == ("lightgbm", "lightgbm")


def test_a_compiled_engine_off_by_more_than_1e9_is_refused(compiled: Path, tmp_path: Path) -> None:
    """The stage's check, on a model whose text was changed after packaging (one leaf value
    nudged by 1e-6), so lleaves compiles a model that differs from the bundle's booster."""
    from pipespec.bundle.bundle import Bundle
    from pipespec.core.errors import EngineMismatchError
    from pipespec.stages import compile as stage
    from pipespec.stages.context import ParamsView, StageContext

    bundle = Bundle.load(compiled / "models" / "bundle")
    nudged = tmp_path / "nudged.txt"
    lines = bundle.model_text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("leaf_value="):
            values = line.removeprefix("leaf_value=").split()
            values[0] = repr(float(values[0]) + 1e-6)
            lines[i] = "leaf_value=" + " ".join(values) + "\n"
            break
    nudged.write_text("".join(lines))
    from pipespec.bundle import engine

    def load_nudged(b: Bundle, obj: Path) -> object:
        import lleaves

        model = lleaves.Model(model_file=str(nudged))
        model.compile(cache=str(obj))
        return model

    real_load = engine.load
    engine.load = load_nudged  # type: ignore[assignment]
    try:
        params = {"production": {"engine": "lleaves"}, "compute": {"num_threads": 1}}
        ctx = StageContext(
            name="compile",
            params=ParamsView(params, ("production.engine", "compute.num_threads"), "compile"),
            inputs={
                "bundle": compiled / "models" / "bundle",
                "data": compiled / "data" / "split" / "valid.parquet",
            },
            outputs={
                "compiled": tmp_path / "models" / "compiled",
                "metrics": tmp_path / "metrics" / "compile.json",
            },
            root=compiled,
        )
        with pytest.raises(EngineMismatchError) as caught:
            stage.run(ctx)
    finally:
        engine.load = real_load  # type: ignore[assignment]
    assert "lleaves differs from booster.predict by" in caught.value.message
    assert "(at most 1e-09 allowed): the compiled engine is refused" in caught.value.message
    assert not (tmp_path / "models" / "compiled").exists()  # nothing half-written


def test_engine_lleaves_without_lleaves_is_refused_at_composition(
    new_project: Callable[..., Path], tmp_path: Path
) -> None:
    """A Python where lleaves cannot be found (a path entry that hides it) refuses the
    config before any stage runs, naming the extra."""
    root = new_project()
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('lleaves', 'llvmlite'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(REPO / "src")])}
    proc = subprocess.run(
        [sys.executable, "-m", "pipespec.cli.main", "compose", "production.engine=lleaves"],
        cwd=root, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "production.engine" in out
    assert "'lleaves' needs the lleaves package, which is not installed" in out
    assert "pipespec[compiled]" in out
    assert "Traceback" not in out


def test_engine_lleaves_without_a_compile_stage_is_refused(
    new_project: Callable[..., Path],
) -> None:
    root = new_project()
    proc = run_cli("compose", "production.engine=lleaves", cwd=root, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "production.engine=lleaves needs a 'compile' stage in pipelines/*.yaml" in out
    assert "kind: compile" in out
    assert "Traceback" not in out
    assert not (root / "dvc.yaml").exists() or "compile" not in (root / "dvc.yaml").read_text()
