"""The fit's data backends: a Dask DataFrame's partitions give the very document the table
in memory gives (exact medians, not Dask's approximations), and what needs the whole table in
memory (a custom transform's fit) is refused on Dask, naming the key."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pandas as pd
import pytest

from pipespec.core.errors import ConfigError
from pipespec.stages.embedded import generate
from pipespec.stages.fit_data import Partitioned
from pipespec.stages.fitter import fit, fit_columns

FEATURES = {
    "select": None,
    "drop": ["customer_id"],
    "rename": {},
    "categorical": None,
    "dates": {},
    "infer_dates": True,
    "derived": {"charge_ratio": "total_charges / monthly_charges"},
    "transforms": {},
    "impute": {"region": "most_frequent", "total_charges": "constant:0"},
    "missing_indicators": True,
    "encoding": "native",
    "max_categories": 1000,
    "min_frequency": 5,
    "other_bucket": True,
    "target_map": {},
    "custom": [],
}


def test_fitting_on_dask_partitions_gives_the_in_memory_transforms() -> None:
    train = generate(6000, seed=3)
    train.loc[train.index[::97], "region"] = None
    train.loc[train.index[::89], "monthly_charges"] = None
    columns = [c for c in train.columns if c != "churned"]
    spec = {**FEATURES, "impute": {**FEATURES["impute"], "monthly_charges": "median"}}
    expected = fit(train, spec, target="churned", task="binary")
    assert any(s.op == "impute" and s.column == "monthly_charges" for s in expected.steps)
    with dask.config.set(scheduler="synchronous"):
        frame = dd.from_pandas(train, npartitions=4, sort=False)
        got = fit_columns(
            Partitioned(frame, columns), spec, target="churned", task="binary", weight=None
        )
    assert got == expected  # the median exact, not Dask's approximate quantile


class Centered:
    """A custom transform: a column minus its training mean."""

    def fit(self, frame: pd.DataFrame) -> dict:
        return {"mean": float(frame["age"].mean())}

    def transform(self, frame: pd.DataFrame, state: dict) -> pd.DataFrame:
        return frame.assign(age=frame["age"] - state["mean"])


def test_custom_transforms_are_refused_on_dask_naming_the_key() -> None:
    train = generate(500, seed=3)
    spec = {**FEATURES, "custom": [f"{__name__}:Centered"]}
    assert fit(train, spec, target="churned", task="binary").steps[-1].op == "custom"
    with dask.config.set(scheduler="synchronous"):
        frame = dd.from_pandas(train, npartitions=2, sort=False)
        columns = [c for c in train.columns if c != "churned"]
        with pytest.raises(ConfigError, match=r"features.custom .*not supported with compute=dask"):
            fit_columns(
                Partitioned(frame, columns), spec, target="churned", task="binary", weight=None
            )
