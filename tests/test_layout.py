"""The repository's layout keeps its own rules: every module of ``src/pipespec`` is named in
``docs/architecture.md`` (by its path), the document names no file outside the repository,
and ``tests/`` mirrors ``src/pipespec/``: a unit-test file is named for the module it tests,
``test_<module>.py`` or ``test_<module>_<topic>.py`` in the folder that mirrors the module's;
end-to-end runs across modules end in ``_e2e``."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import REPO

SRC = REPO / "src" / "pipespec"
TESTS = REPO / "tests"
ARCHITECTURE = REPO / "docs" / "architecture.md"


def _modules() -> list[str]:
    return sorted(
        p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if p.name != "__init__.py"
    )


def test_every_module_is_named_in_the_architecture_document() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    modules = _modules()
    assert len(modules) > 50  # the walk found the package
    unnamed = [m for m in modules if f"`{m}`" not in text and f"`{m}'" not in text]
    assert not unnamed, f"docs/architecture.md does not name: {', '.join(unnamed)}"


def test_the_architecture_document_names_no_path_outside_the_repository() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    outside = re.findall(r"`(/(?:work|home|tmp|Users)/[^`]*|\.\./[^`]+)`", text)
    assert not outside, outside


def _mirrored(folder: Path) -> set[str]:
    """The names a test file in ``tests/<folder>`` may start with: the modules and
    packages of ``src/pipespec/<folder>``, and the package itself."""
    package = SRC / folder
    names = {p.stem for p in package.glob("*.py") if p.name != "__init__.py"}
    names |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    return names | {package.name}


def test_tests_mirror_the_package_by_module_name() -> None:
    stray = []
    files = sorted(TESTS.rglob("test_*.py"))
    for path in files:
        folder = path.parent.relative_to(TESTS)
        name = path.stem.removeprefix("test_")
        if folder == Path(".") or name.endswith("_e2e"):
            continue  # the repository's own checks; runs across modules
        if not (SRC / folder).is_dir():
            stray.append(f"{path.relative_to(REPO)}: no src/pipespec/{folder.as_posix()}/")
            continue
        if not any(name == n or name.startswith(f"{n}_") for n in _mirrored(folder)):
            stray.append(f"{path.relative_to(REPO)}: names no module of {folder.as_posix()}/")
    assert len(files) > 50
    assert not stray, "\n".join(stray)


def test_test_file_names_are_unique_as_pytest_imports_them() -> None:
    names = [p.name for p in TESTS.rglob("test_*.py")]
    assert sorted(set(names)) == sorted(names), "duplicate test file names"
