"""An override Hydra's grammar cannot parse gets a hint with the quoting that works in bash."""

from __future__ import annotations

import subprocess

import pytest

from helpers import run_main
from pipespec.core.errors import ConfigError
from pipespec.engine.compose import compose, quoting_hint
from pipespec.engine.project import Project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    base = tmp_path_factory.mktemp("hints")
    run_main("init", str(base / "p"), cwd=base)
    return Project(base / "p")


@pytest.mark.parametrize(
    ("override", "fixed"),
    [
        ("dataset.sep=;", "'dataset.sep=\";\"'"),
        ("+evaluation.gates.test.auc=>= 0.80", "'+evaluation.gates.test.auc=\">= 0.80\"'"),
        ("dataset.comment=#", "'dataset.comment=\"#\"'"),
    ],
)
def test_malformed_override_names_the_quoting(project, override, fixed):
    with pytest.raises(ConfigError, match="malformed override") as info:
        compose(project, [override])
    assert override in str(info.value)
    assert fixed in str(info.value)
    assert quoting_hint(override) == fixed
    # the hint, typed in bash, composes
    [word] = subprocess.run(["/bin/bash", "-c", f"printf '%s\\n' {fixed}"], capture_output=True,
                            text=True, check=True).stdout.splitlines()  # fmt: skip
    assert compose(project, [word]) is not None
