"""The static table of LightGBM's parameter names is LightGBM's own, and reading it (and
composing) imports neither LightGBM nor Dask."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import copy_template_project
from pipespec.core import lightgbm_params


def test_table_is_the_installed_lightgbms() -> None:
    import lightgbm
    from lightgbm.basic import _ConfigAliases

    installed = _ConfigAliases._get_all_param_aliases()
    table = {name: tuple(sorted(set(aliases) - {name})) for name, aliases in installed.items()}
    lines = "\n".join(f"    {name!r}: {table[name]!r}," for name in sorted(table))
    assert dict(sorted(table.items())) == lightgbm_params.PARAMETERS, (
        f"LightGBM {lightgbm.__version__}'s parameters differ from the table in "
        f"src/pipespec/core/lightgbm_params.py ({lightgbm_params.LIGHTGBM_VERSION}). "
        f"Replace PARAMETERS with:\n{lines}"
    )
    assert lightgbm.__version__ == lightgbm_params.LIGHTGBM_VERSION


def test_unknown_names_and_suggestions() -> None:
    assert lightgbm_params.unknown(["num_leaves", "subsample", "eta", "min_data"]) == []
    assert lightgbm_params.unknown(["num_leafs", "max_bin", "colsample"]) == [
        "num_leafs",
        "colsample",
    ]
    assert "num_leaves" in lightgbm_params.close_names("num_leafs")


def test_composing_imports_neither_lightgbm_nor_dask(tmp_path) -> None:
    root = copy_template_project(tmp_path)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipespec.engine.compose import compose\n"
        "from pipespec.engine.project import Project\n"
        f"compose(Project(Path({str(root)!r})), ('+model.params.max_bin=63', 'compute=dask'))\n"
        "heavy = sorted({'lightgbm', 'dask', 'distributed'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_aliases_give_every_key_of_a_parameter_its_name_first() -> None:
    assert lightgbm_params.aliases("monotone_constraints") == (
        "monotone_constraints", "mc", "monotone_constraint", "monotonic_cst",
    )  # fmt: skip
    assert lightgbm_params.aliases("deterministic") == ("deterministic",)
    with pytest.raises(KeyError, match="monotone"):
        lightgbm_params.aliases("monotone")  # a name LightGBM does not have
