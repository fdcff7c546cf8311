"""production.monitor's thresholds are checked at composition, naming the key and the
override (core/value_checks.py)."""

from __future__ import annotations

import re

import pytest

from helpers import copy_template_project
from pipespec.core.errors import ConfigError
from pipespec.engine.compose import compose
from pipespec.engine.project import Project

CASES = [
    ("production.monitor.unusual_margin=1.5", "must be a share in (0, 1], got 1.5"),
    ("production.monitor.unusual_margin=0", "must be a share in (0, 1], got 0.0"),
    ("production.monitor.violation_rate=-0.1", "must be a share in (0, 1], got -0.1"),
    ("production.monitor.psi=0", "must be a number > 0, got 0.0"),
    ("production.monitor.pvalue=2", "must be in (0, 1) or null, got 2.0"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(copy_template_project(tmp_path_factory.mktemp("monitor-config")))


@pytest.mark.parametrize(("override", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_monitor_threshold_is_refused_at_composition(
    project: Project, override: str, message: str
) -> None:
    key = override.split("=")[0]
    pattern = re.escape(f"'{key}' in command-line override '{override}': {message}")
    with pytest.raises(ConfigError, match=pattern):
        compose(project, (override,))


def test_the_default_margin_composes(project: Project) -> None:
    params = compose(project, ()).params
    assert params["production"]["monitor"]["unusual_margin"] == 0.05
