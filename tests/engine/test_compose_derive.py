"""A derive expression outside the grammar, and a custom-module allow-list entry that is not
a module name, are refused at composition, naming the key, where it was set, and the token."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import copy_template_project
from pipespec.core.errors import ConfigError
from pipespec.engine.compose import compose
from pipespec.engine.project import Project
from pipespec.stages.fitter import fit


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(copy_template_project(tmp_path_factory.mktemp("derive")))


BAD = {
    "@": ('@pd.io.common.os.system("id")', r"'@' is not allowed in an expression"),
    "attribute": (
        "tenure.__class__",
        r"attribute access is not allowed in an expression: "
        r"'\.__class__'",
    ),
    "dunder": (
        "__builtins__ * 2",
        r"a name with '__' is not allowed in an expression: "
        r"'__builtins__'",
    ),
    "call": ('getattr(tenure, "real")', r"function 'getattr' is not allowed in an expression"),
    "subscript": ("tenure[0]", r"a subscript is not allowed in an expression: 'tenure\[0\]'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_expression_override_names_key_override_and_token(
    project: Project, case: str
) -> None:
    expr, message = BAD[case]
    override = f"+features.derived.z='{expr}'"
    where = re.escape(f"'features.derived.z' in command-line override '{override}'")
    with pytest.raises(ConfigError, match=rf"{where}: {message}.*\n.*the functions abs, "):
        compose(project, [override])


def test_a_bad_expression_in_a_config_file_names_the_file(tmp_path: Path) -> None:
    root = copy_template_project(tmp_path / "p")
    features = root / "configs" / "features" / "default.yaml"
    text = features.read_text(encoding="utf-8")
    features.write_text(
        text.replace("derived: {}", 'derived: {ok: "log1p(tenure) / 2", bad: "tenure.real"}'),
        encoding="utf-8",
    )
    with pytest.raises(
        ConfigError,
        match=r"'features\.derived\.bad' in configs/features/default\.yaml: attribute access "
        r"is not allowed in an expression: '\.real'",
    ):
        compose(Project(root), [])


def test_a_good_expression_and_allow_list_compose(project: Project) -> None:
    params = compose(project, ["+features.derived.z='where(tenure > 0, log(tenure), 0)'",
                               "production.allow_custom=[mine.features]"])  # fmt: skip
    text = str(params)
    assert "where(tenure > 0, log(tenure), 0)" in text
    assert "mine.features" in text


def test_an_allow_list_entry_that_is_not_a_module_is_refused(project: Project) -> None:
    override = "production.allow_custom=[mine,../evil.py]"
    where = re.escape(f"'production.allow_custom.1' in command-line override '{override}'")
    with pytest.raises(ConfigError, match=rf"{where}: '\.\./evil\.py' is not a module name"):
        compose(project, [override])


def test_the_featurize_stage_names_the_key_and_token_too() -> None:
    frame = pd.DataFrame({"a": np.arange(10.0), "y": ["n", "y"] * 5})
    spec = {"drop": [], "categorical": None, "derived": {"z": "a.__class__"}}
    with pytest.raises(ConfigError, match=r"features\.derived\.z: attribute access is not "
                       r"allowed in an expression: '\.__class__'"):  # fmt: skip
        fit(frame, spec, target="y", task="binary")
    spec["derived"] = {"z": "a / (a - 1)"}
    doc = fit(frame, spec, target="y", task="binary")
    derive = next(s for s in doc.steps if s.op == "derive")
    assert (derive.column, derive.expr, derive.uses) == ("z", "a / (a - 1)", ["a"])
