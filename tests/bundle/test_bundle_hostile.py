"""A hostile-bundle corpus: a real bundle, altered as an attacker who can write a bundle
directory would, with its manifest's hashes recomputed so that only the data-not-code checks
can refuse it. Each is refused with a named error (exit 7, no traceback), nothing it names is
imported or run (a marker file is never created, ``sys.modules`` stays clean), and `pipespec
serve` exits without listening."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import BIN
from pipespec.bundle import bundle as files
from pipespec.bundle.bundle import ALLOW_ENV, EXPECT_ENV, Bundle
from pipespec.core.errors import BundleError

pytestmark = pytest.mark.slow  # the trained project is a whole run (shared by the session)

MARKER = "PWNED"  # what a payload would create in the working directory if it ran


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rehash(bundle: Path, custom: dict[str, str] | None = None, **extra: object) -> None:
    """Recompute the manifest's hash of every file it lists (following links, as the
    attacker's tooling would), optionally recording custom module hashes or other keys."""
    manifest = json.loads((bundle / files.MANIFEST).read_text())
    for name in manifest["files"]:
        if (bundle / name).is_file():
            manifest["files"][name] = _sha((bundle / name).read_bytes())
    if custom is not None:
        manifest[files.CUSTOM] = custom
    manifest.update(extra)
    (bundle / files.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def edit_transforms(bundle: Path, change: Callable[[dict], None]) -> None:
    doc = json.loads((bundle / files.TRANSFORMS).read_text())
    change(doc)
    (bundle / files.TRANSFORMS).write_text(json.dumps(doc, indent=2, sort_keys=True))


def derive(expr: str, uses: list[str] | None = None) -> Callable[[Path], None]:
    """A derive step with ``expr`` put first in the transforms."""

    def damage(bundle: Path) -> None:
        step = {"op": "derive", "column": "zz", "expr": expr, "uses": uses or ["age"]}
        edit_transforms(bundle, lambda doc: doc["steps"].insert(0, step))
        rehash(bundle)

    return damage


def step(raw: dict) -> Callable[[Path], None]:
    def damage(bundle: Path) -> None:
        edit_transforms(bundle, lambda doc: doc["steps"].append(raw))
        rehash(bundle)

    return damage


def linked_card(bundle: Path) -> None:
    target = bundle.parent / "elsewhere.md"
    target.write_text("# a file outside the bundle\n")
    (bundle / files.CARD_MD).unlink()
    (bundle / files.CARD_MD).symlink_to(target)
    rehash(bundle)


def extra_file(name: str) -> Callable[[Path], None]:
    def damage(bundle: Path) -> None:
        (bundle / name).write_text("x")
        manifest = json.loads((bundle / files.MANIFEST).read_text())
        manifest["files"][name] = _sha(b"x")
        (bundle / files.MANIFEST).write_text(json.dumps(manifest))

    return damage


def listed(name: str) -> Callable[[Path], None]:
    """The manifest lists ``name`` (the file need not exist)."""

    def damage(bundle: Path) -> None:
        manifest = json.loads((bundle / files.MANIFEST).read_text())
        manifest["files"][name] = _sha(b"")
        (bundle / files.MANIFEST).write_text(json.dumps(manifest))

    return damage


def fifo(bundle: Path) -> None:
    (bundle / files.CARD_MD).unlink()
    os.mkfifo(bundle / files.CARD_MD)


def directory(bundle: Path) -> None:
    (bundle / files.CARD_MD).unlink()
    (bundle / files.CARD_MD).mkdir()


def deep(name: str, depth: int) -> Callable[[Path], None]:
    def damage(bundle: Path) -> None:
        (bundle / name).write_text("[" * depth + "]" * depth)
        rehash(bundle)

    return damage


def deep_inside_schema(bundle: Path) -> None:
    doc = json.loads((bundle / files.SCHEMA).read_text())
    nested: object = 1
    for _ in range(900):  # parses (below JSON's limit); the typed reader refuses it by field
        nested = {"x": nested}
    doc["schema"]["columns"][0] = nested
    (bundle / files.SCHEMA).write_text(json.dumps(doc))
    rehash(bundle)


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "eval with @": (
        derive(f"@pd.io.common.os.system('touch {MARKER}')"),
        r"transforms\.json.*steps\[0\] \(op derive\): '@' is not allowed in an expression",
    ),
    "attribute access": (
        derive("age.__class__.__init__.__globals__"),
        r"attribute access is not allowed in an expression: '\.__globals__'",
    ),
    "dunder call": (
        derive(f"__import__('os').system('touch {MARKER}')"),
        r"a call of anything but a function name is not allowed in an expression",
    ),
    "dunder name": (derive("__builtins__ + age"), r"a name with '__' is not allowed"),
    "call outside the table": (
        derive(f'eval(\'open("{MARKER}", "w")\')'),
        r"function 'eval' is not allowed in an expression",
    ),
    "subscript": (derive("age[0]"), r"a subscript is not allowed in an expression"),
    "unknown op": (step({"op": "exec", "code": "1"}), r"unknown op 'exec'; ops: bin, "),
    "unknown field": (
        step({"op": "log1p", "column": "age", "then": "x"}),
        r"\(op log1p\): unknown field 'then'",
    ),
    "custom op naming an arbitrary module": (
        step({"op": "custom", "fn": "this:Nope", "state": None}),
        r"custom transform 'this:Nope' from module 'this', which this host does not allow: "
        r"nothing was imported",
    ),
    "custom op naming a file": (
        step({"op": "custom", "fn": "../../evil:X", "state": None}),
        r"'\.\./\.\./evil:X' is not an import path",
    ),
    "symlinked card": (linked_card, r"card\.md is a symbolic link"),
    "fifo": (fifo, r"card\.md is not a regular file"),
    "directory": (directory, r"card\.md is not a regular file"),
    "odd file name": (extra_file("evil\nname"), r"a file with an odd name 'evil\\nname'"),
    "hidden file": (extra_file(".evil"), r"a file with an odd name '\.evil'"),
    "empty name in the manifest": (listed(""), r"lists an invalid file name ''"),
    "NUL in a name": (listed("card\x00.md"), r"lists an invalid file name 'card\\x00\.md'"),
    "path in a name": (listed("../card.md"), r"lists an invalid file name '\.\./card\.md'"),
    "deeply nested schema.json": (deep(files.SCHEMA, 100_000), r"schema\.json is nested too deep"),
    "deeply nested profile.json": (
        deep(files.PROFILE, 100_000),
        r"profile\.json is nested too deep",
    ),
    "nesting inside the contract": (
        deep_inside_schema,
        r"schema\.json\.schema\.columns\[0\]: unknown field 'x'",
    ),
    "deeply nested card.json": (deep(files.CARD, 100_000), r"card\.json is nested too deep"),
}


@pytest.fixture
def copy(bundle_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def serve_refuses(bundle: Path, cwd: Path, *args: str, env: dict | None = None) -> str:
    """`pipespec serve` on ``bundle`` exits 7 with a named error, never listening."""
    try:
        proc = subprocess.run(
            [str(BIN / "pipespec"), "serve", "--bundle", str(bundle), "--port", "0", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:  # it served
        raise AssertionError(f"pipespec serve started on a hostile bundle: {exc.stderr}") from exc
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert "serving" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Beautiful is better than ugly" not in proc.stdout  # `this` never ran
    return proc.stderr


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_bundle_is_refused_and_nothing_runs(copy: Path, tmp_path: Path, case: str) -> None:
    damage, match = HOSTILE[case]
    damage(copy)
    imported = set(sys.modules)
    with pytest.raises(BundleError, match=match):
        Bundle.load(copy)
    assert "this" not in set(sys.modules) - imported
    stderr = serve_refuses(copy, tmp_path)
    assert "bundle" in stderr
    assert not (tmp_path / MARKER).exists()
    assert not (copy / MARKER).exists()


def test_a_symlinked_bundle_directory_is_refused(copy: Path, tmp_path: Path) -> None:
    link = tmp_path / "linked"
    link.symlink_to(copy, target_is_directory=True)
    with pytest.raises(BundleError, match=r"bundle .*linked is a symbolic link"):
        Bundle.load(link)
    assert "is a symbolic link" in serve_refuses(link, tmp_path)
    Bundle.load(copy)  # the directory itself is fine


def _probe(code: str, cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pythonpath), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_a_refused_custom_module_is_never_imported(copy: Path, tmp_path: Path) -> None:
    step({"op": "custom", "fn": "this:Nope", "state": None})(copy)
    proc = _probe(
        f"""
        import sys
        from pipespec.bundle.bundle import Bundle
        from pipespec.core.errors import BundleError
        try:
            Bundle.load({str(copy)!r})
        except BundleError as exc:
            print("refused:", exc.message)
        print("imported:", "this" in sys.modules)
        """,
        tmp_path,
        tmp_path,
    )
    assert "refused: bundle" in proc.stdout, proc.stderr
    assert "imported: False" in proc.stdout
    assert "Beautiful is better than ugly" not in proc.stdout


MODULE = '''
import pathlib

pathlib.Path(__file__).with_name("imported.marker").write_text("ran")  # a side effect


class Same:
    """A custom transform that leaves the features as they are."""

    def fit(self, frame):
        return {}

    def transform(self, frame, state):
        return frame
'''


@pytest.fixture
def custom_bundle(copy: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The bundle with a custom step of module ``hostile_mod`` (in ``tmp_path/mods``), its
    source hash recorded in the manifest as the package stage records it."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "hostile_mod.py").write_text(MODULE)
    edit_transforms(
        copy, lambda doc: doc["steps"].append({"op": "custom", "fn": "hostile_mod:Same"})
    )
    rehash(copy, custom={"hostile_mod": _sha((mods / "hostile_mod.py").read_bytes())})
    return copy, mods


LOAD_AND_PREDICT = """
    import sys
    import pandas as pd
    from pipespec.bundle.bundle import Bundle
    from pipespec.core.errors import BundleError
    allow = sys.argv[1:] if len(sys.argv) > 1 else {allow!r}
    try:
        bundle = Bundle.load({bundle!r}, allow_custom=allow)
    except BundleError as exc:
        print("refused:", exc.message)
    else:
        rows = pd.read_parquet({rows!r})
        same = bundle.predict(rows).equals(Bundle.load({original!r}).predict(rows))
        print("predicted, same as without the step:", same)
    print("imported:", "hostile_mod" in sys.modules)
"""


def _load_custom(bundle: Path, mods: Path, original: Path, allow: list[str]) -> str:
    rows = mods.parent / "rows.parquet"
    if not rows.exists():
        import pandas as pd

        pd.read_parquet(original.parents[1] / "data" / "split" / "valid.parquet").head(
            50
        ).to_parquet(rows)
    code = LOAD_AND_PREDICT.format(
        allow=allow, bundle=str(bundle), rows=str(rows), original=str(original)
    )
    proc = _probe(code, mods.parent, mods)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_an_allowed_custom_module_with_its_recorded_source_loads(
    custom_bundle: tuple[Path, Path], bundle_dir: Path
) -> None:
    bundle, mods = custom_bundle
    out = _load_custom(bundle, mods, bundle_dir, [])
    assert "refused: bundle" in out
    assert "which this host does not allow: nothing was imported" in out
    assert "imported: False" in out
    assert not (mods / "imported.marker").exists()
    out = _load_custom(bundle, mods, bundle_dir, ["hostile_mod"])
    assert "predicted, same as without the step: True" in out
    assert (mods / "imported.marker").exists()  # the control: an admitted module is imported


def test_a_custom_module_whose_source_changed_is_refused_before_import(
    custom_bundle: tuple[Path, Path], bundle_dir: Path, tmp_path: Path
) -> None:
    bundle, mods = custom_bundle
    source = mods / "hostile_mod.py"
    source.write_text(source.read_text() + "\nimport os; os.system('touch PWNED')\n")
    out = _load_custom(bundle, mods, bundle_dir, ["hostile_mod"])
    assert "refused: bundle" in out
    assert "the source of module 'hostile_mod'" in out
    assert "does not match the SHA-256 manifest.json recorded" in out
    assert "imported: False" in out
    assert not (mods / "imported.marker").exists()
    assert not (tmp_path / MARKER).exists()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(mods), *sys.path])}
    stderr = serve_refuses(bundle, tmp_path, "--allow-custom", "hostile_mod", env=env)
    assert "does not match the SHA-256" in stderr
    env[ALLOW_ENV] = "other,hostile_mod"  # as the Docker export sets it: allowed, then checked
    assert "does not match the SHA-256" in serve_refuses(bundle, tmp_path, env=env)
    assert not (mods / "imported.marker").exists()


def test_a_custom_module_without_a_recorded_hash_is_refused(
    custom_bundle: tuple[Path, Path], bundle_dir: Path
) -> None:
    bundle, mods = custom_bundle
    rehash(bundle, custom={})
    out = _load_custom(bundle, mods, bundle_dir, ["hostile_mod"])
    assert "records no SHA-256 for module 'hostile_mod'" in out
    assert "imported: False" in out


def test_expect_sha256_refuses_any_other_bundle(
    copy: Path, bundle_dir: Path, tmp_path: Path
) -> None:
    sha = Bundle.load(bundle_dir).sha
    assert Bundle.load(copy, expect_sha256=sha.upper()).sha == sha
    other = "0" * 64
    with pytest.raises(BundleError, match=rf"is not the expected one: its manifest\.json has "
                       rf"SHA-256 {sha}, not {other}"):  # fmt: skip
        Bundle.load(copy, expect_sha256=other)
    with pytest.raises(BundleError, match=r"--expect-sha256 'abc' is not a SHA-256"):
        Bundle.load(copy, expect_sha256="abc")
    assert "is not the expected one" in serve_refuses(copy, tmp_path, "--expect-sha256", other)
    env = {**os.environ, EXPECT_ENV: other}
    assert "is not the expected one" in serve_refuses(copy, tmp_path, env=env)
    for argv in (
        ["predict", "in.csv", "out.csv"],
        ["monitor", "--current", "in.csv"],
        ["test", "in.csv"],
    ):
        proc = subprocess.run(
            [str(BIN / "pipespec"), *argv, "--bundle", str(copy), "--expect-sha256", other],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 7, proc.stderr
        assert "is not the expected one" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_rich_markup_in_the_card_is_shown_escaped(copy: Path, tmp_path: Path, serve) -> None:
    card = json.loads((copy / files.CARD).read_text())
    card["name"] = "[/evil][bold red]x"
    (copy / files.CARD).write_text(json.dumps(card))
    rehash(copy)
    server = serve(copy)
    assert "serving [/evil][bold red]x (bundle" in server.stderr()
    assert server.client.get("/health").json()["model"] == "[/evil][bold red]x"


def test_packaging_records_the_custom_modules_source_and_loading_checks_it(
    trained_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """``assemble`` (the package stage) hashes a custom module's source into the manifest
    before importing it; a host then needs to allow the module, or be the project it lives in
    (a pipeline stage), and the source must still match."""
    from pipespec.bundle.assemble import Settings, assemble
    from pipespec.stages.parquet import read_table

    name = "bundledata_packaged_mod"
    mods = tmp_path / "project"
    mods.mkdir()
    (mods / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(mods))
    request.addfinalizer(lambda: sys.modules.pop(name, None))  # the import is undone after
    doc = json.loads((trained_project / "models" / "featurize" / "transforms.json").read_text())
    doc["steps"].append({"op": "custom", "fn": f"{name}:Same", "state": {}})
    target = tmp_path / "bundle"
    assemble(
        target,
        model_text=(trained_project / "models" / "train" / "model.txt").read_bytes(),
        transforms_text=json.dumps(doc).encode(),
        train=read_table(trained_project / "data" / "split" / "train.parquet")[0],
        settings=Settings(name="custom", env="dev"),
    )
    manifest = json.loads((target / files.MANIFEST).read_text())
    assert manifest[files.CUSTOM] == {name: _sha((mods / f"{name}.py").read_bytes())}
    with pytest.raises(BundleError, match=rf"from module '{name}', which this host does not"):
        Bundle.load(target)
    with pytest.raises(BundleError, match=r"which this host does not allow"):
        Bundle.load(target, project=tmp_path / "elsewhere")
    assert Bundle.load(target, allow_custom=[name]).custom[f"{name}:Same"].__name__ == "Same"
    assert Bundle.load(target, project=mods).custom  # a stage of the project it lives in
    (mods / f"{name}.py").write_text(MODULE + "\n# edited\n")
    with pytest.raises(BundleError, match=rf"the source of module '{name}' .* does not match"):
        Bundle.load(target, allow_custom=[name])
