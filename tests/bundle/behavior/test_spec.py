"""The checks as typed data: `spec_from` (core/documents' converter, leniently), the rules
beyond one field's type, and the checks file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import gen
from pipespec.bundle import behavior
from pipespec.core.config import Direction
from pipespec.core.errors import ConfigError


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (
            {"slices": {"a": {"colum": "x"}}},
            r"^t: behavior\.slices\.a: unknown field 'colum'\nDid you mean 'column'\?",
        ),
        (
            {"slices": {"a": {"column": "x", "values": [1], "bins": 3, "max_gap": {"auc": 1}}}},
            "behavior.slices.a in t: give exactly one of values, min/max or bins",
        ),
        ({"slices": {"a": {"column": "x", "values": [1]}}}, "give bounds, max_gap or both"),
        (
            {"slices": {"a": {"column": "x", "values": [1], "bounds": {"auc": "high"}}}},
            "behavior.slices.a.bounds.auc: cannot read bound 'high'",
        ),
        ({"invariance": {"a": {"column": "x"}}}, "behavior.invariance.a in t: give exactly one"),
        (
            {"directional": {"a": {"column": "x", "shift": 1, "direction": "sideways"}}},
            r"t: behavior\.directional\.a\.direction: 'sideways' is not one of up, down",
        ),
        (
            {"directional": {"a": {"column": "x", "shift": 1}}},
            r"t: behavior\.directional\.a: field 'direction' is missing",
        ),
        (
            {"directional": {"a": {"column": "x", "shift": "???", "direction": "up"}}},
            r"t: behavior\.directional\.a\.shift: a value is required",
        ),
        ({"rows": "many"}, r"t: behavior\.rows: expected an integer, not a string"),
        ({"rows": 2.5}, r"t: behavior\.rows: expected an integer, not a number"),
        ({"search": {"max_columns": 3}}, r"behavior\.search\.max_columns in t: must be 1 or 2"),
    ],
)
def test_bad_checks_name_the_file_and_the_key(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        behavior.spec_from({"name": "t", **spec}, where="t")


def test_a_checks_file_s_values_read_as_a_config_gives_them() -> None:
    """A hand-written checks file says `shift: 24` for a float and `column: 2019` for a
    column named by a number: read as Hydra's composition reads them."""
    spec = behavior.spec_from(
        {
            "name": "t",
            "rows": 500.0,
            "directional": {"a": {"column": 2019, "shift": 24, "direction": "down"}},
            "invariance": {"b": {"column": "x", "value": 3}},
        },
        where="t",
    )
    directional = spec.directional["a"]
    assert (directional.column, directional.direction) == ("2019", Direction.down)
    assert directional.shift == 24.0
    assert isinstance(directional.shift, float)
    assert spec.rows == 500
    assert isinstance(spec.rows, int)
    assert spec.invariance["b"].value == 3  # Any: as written
    assert spec.search.enabled
    assert spec.latency.records == 50


def test_load_checks_reads_a_checks_file_or_params_yaml(tmp_path: Path) -> None:
    gen(tmp_path, {
        "checks.yaml": {"name": "file", "rows": 10},
        "params.yaml": {"model": {}, "behavior": {"name": "params"}},
        "bad.yaml": "behavior: [unclosed\n",
        "list.yaml": "- 1\n",
    })  # fmt: skip
    assert behavior.load_checks(tmp_path / "checks.yaml") == {"name": "file", "rows": 10}
    assert behavior.load_checks(tmp_path / "params.yaml") == {"name": "params"}
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML or JSON"):
        behavior.load_checks(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a 'behavior' mapping"):
        behavior.load_checks(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match=r"checks file not found: .*none\.yaml"):
        behavior.load_checks(tmp_path / "none.yaml")


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("behavior.slices.month_to_month.colum=x", r"behavior\.slices\.month_to_month\.colum"),
        ("behavior.directional.longer_tenure.direction=sideways", r"sideways"),
        ("behavior.search.bins=many", r"behavior\.search\.bins"),
    ],
)
def test_bad_behaviour_config_fails_at_composition(
    tmp_path: Path, override: str, match: str
) -> None:
    from helpers import copy_template_project
    from pipespec.engine.compose import compose
    from pipespec.engine.project import Project

    with pytest.raises(ConfigError, match=match):
        compose(Project(copy_template_project(tmp_path)), (override,))
