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
    assert bundle.schema.names == [f["name"] for f in bundle.transforms["features"]]
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
