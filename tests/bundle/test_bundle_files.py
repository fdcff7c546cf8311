"""The bundle on disk: what it holds, refusal of tampered or incompatible bundles, byte-identical
rebuilds, and atomic replacement."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import pipespec
from helpers import run_cli
from pipespec.bundle import bundle as files
from pipespec.bundle.bundle import Bundle
from pipespec.core.errors import BundleError

pytestmark = pytest.mark.slow


@pytest.fixture
def copy(bundle_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the trained project's bundle, free to damage."""
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def test_bundle_holds_model_transforms_schema_profile_card_and_manifest(bundle_dir: Path) -> None:
    names = sorted(p.name for p in bundle_dir.iterdir())
    assert names == sorted([*files.FILES, files.MANIFEST])
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in bundle_dir.iterdir())
    bundle = Bundle.load(bundle_dir)
    assert bundle.task == "binary"
    assert bundle.schema.names == bundle.transforms.feature_names
    assert "customer_id" in bundle.schema.ignored
    card = bundle.card
    assert card["model"]["trees"] > 0
    assert card["versions"]["lightgbm"]
    assert card["versions"]["pandas"]
    assert card["metrics"]["best_iteration"] > 0  # the train stage's metrics
    assert card["params"]["model"]["num_boost_round"] == 40
    assert len(card["data"]["train"]["sha256"]) == 64
    assert card["pipespec"] == pipespec.__version__
    assert "code" not in card  # no hash of pipespec's own code: refactors keep the bytes
    contract = bundle.contract
    assert contract.reading.format == "parquet"  # the embedded data is a table
    assert contract.policy.strict.unseen_category is False
    assert card["git"] is None  # production.git_commit is off: bundles stay byte-identical
    profile = bundle.profile
    assert set(profile["features"]) == set(bundle.schema.names)
    age = profile["features"]["age"]
    assert age["missing"] > 0
    assert sum(age["counts"]) + age["missing"] == profile["rows"]
    assert profile["features"]["contract"]["counts"]
    assert profile["prediction"]["type"] == "numeric"
    text = (bundle_dir / files.CARD_MD).read_text()
    assert "# Model card" in text
    assert "best_iteration" in text
    assert "`age`" in text


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: _append(b / "model.txt", b"\n"), r"model\.txt does not match its SHA-256"),
        (lambda b: _append(b / "schema.json", b" "), r"schema\.json does not match its SHA-256"),
        (lambda b: (b / "profile.json").unlink(), r"missing profile\.json"),
        (lambda b: (b / "notes.txt").write_text("hi"), r"holds notes\.txt, which manifest\.json"),
        (lambda b: (b / "manifest.json").unlink(), r"manifest\.json is missing"),
        (lambda b: _manifest(b, format_version=3), r"format version 3; this pipespec reads"),
        (lambda b: _manifest(b, format_version=1), r"format version 1, which this pipespec"),
        (lambda b: _manifest(b, format="other"), r"'format' is not 'pipespec-bundle'"),
    ],
)
def test_tampered_or_incompatible_bundle_is_refused(copy: Path, damage, match: str) -> None:
    damage(copy)
    with pytest.raises(BundleError, match=match):
        Bundle.load(copy)
    proc = run_cli(
        "predict", "--bundle", str(copy), "in.csv", "out.csv", cwd=copy.parent, check=False
    )
    assert proc.returncode == 7, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (copy.parent / "out.csv").exists()


def test_tampered_bundle_is_refused_by_serve_and_monitor(copy: Path) -> None:
    _append(copy / "model.txt", b"Tree=999\n")
    for argv in (
        ["serve", "--bundle", str(copy), "--port", "0"],
        ["monitor", "--bundle", str(copy), "--current", "x.csv"],
    ):
        proc = run_cli(*argv, cwd=copy.parent, check=False)
        assert proc.returncode == 7
        assert "model.txt does not match its SHA-256" in proc.stderr


def test_no_bundle_names_the_path(tmp_path: Path) -> None:
    proc = run_cli("predict", "in.csv", "out.csv", cwd=tmp_path, check=False)
    assert proc.returncode == 7
    assert "no bundle at models/bundle" in proc.stderr
    assert "pipespec run" in proc.stderr


def test_rebuild_is_byte_identical(trained_project: Path, tmp_path: Path) -> None:
    """Same inputs, same params, same versions: the package stage writes the same bytes."""
    clone = tmp_path / "proj"
    shutil.copytree(trained_project, clone, symlinks=True)
    shutil.rmtree(clone / "models" / "bundle")
    run_cli("stage", "package", cwd=clone)
    for path in sorted((trained_project / "models" / "bundle").iterdir()):
        assert (clone / "models" / "bundle" / path.name).read_bytes() == path.read_bytes(), (
            path.name
        )
    assert not list((clone / "models").glob(".bundle.*"))


def test_write_replaces_atomically(copy: Path, tmp_path: Path, monkeypatch) -> None:
    contents = {name: (copy / name).read_bytes() for name in files.FILES}
    target = tmp_path / "out" / "bundle"
    first = files.write(target, contents)
    assert Bundle.load(target).sha == first

    changed = {**contents, files.CARD_MD: b"# another card\n"}
    calls = {"n": 0}
    real = Path.write_bytes

    def failing(self: Path, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        files.write(target, changed)
    monkeypatch.undo()
    assert Bundle.load(target).sha == first  # the previous bundle is whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["bundle"]  # no temp dirs left

    second = files.write(target, changed)
    assert second != first
    assert Bundle.load(target).sha == second
    assert sorted(p.name for p in target.parent.iterdir()) == ["bundle"]


def _append(path: Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes() + data)


def _manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_docstring_change_leaves_the_bundle_and_the_lock_as_they_were(
    trained_project: Path, tmp_path: Path
) -> None:
    """A change to pipespec that changes no behaviour (here: docstrings of three modules the
    bundle's content depends on) rebuilds byte-identical artifacts: the card records the
    version and the inputs, not a hash of pipespec's code."""
    import os
    import subprocess

    from helpers import BIN, SMALL

    root = tmp_path / "proj"
    shutil.copytree(trained_project, root, symlinks=True)
    lock = (root / "dvc.lock").read_bytes()
    manifest = (root / "models" / "bundle" / "manifest.json").read_bytes()
    package = tmp_path / "edited"
    shutil.copytree(Path(pipespec.__file__).parent, package / "pipespec")
    for rel in ("stages/package.py", "stages/load.py", "bundle/transforms.py"):
        path = package / "pipespec" / rel
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"""', '"""Edited, to no effect. ', 1), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(package)}
    probe = subprocess.run(
        [str(BIN / "python"), "-c", "import pipespec.stages.package as m; print(m.__doc__)"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.startswith("Edited, to no effect.")  # the edited copy is what runs
    proc = subprocess.run(
        [str(BIN / "pipespec"), "run", "-f", *SMALL],
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "package" in proc.stderr
    assert (root / "models" / "bundle" / "manifest.json").read_bytes() == manifest
    assert (root / "dvc.lock").read_bytes() == lock
