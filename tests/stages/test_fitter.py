"""The featurize fitter: types inferred, every kind of step fitted on train in its order,
config mistakes named by key; the document applies through the one interpreter."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipespec.bundle.transforms import apply
from pipespec.core.documents import to_json
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.fitter import fit

BASE = {"drop": [], "categorical": None, "max_categories": 1000}


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n).round(2),
            "count": rng.integers(0, 10, n).astype(float),
            "city": pd.array(
                rng.choice(["paris", "lyon", "nice", "metz"], n, p=[0.5, 0.3, 0.19, 0.01]),
                dtype="str",
            ),
            "when": pd.array([f"2024-0{1 + i % 9}-1{i % 9}" for i in range(n)], dtype="str"),
            "charges": pd.array(
                [" " if i % 50 == 0 else f"{i * 1.5:.2f}" for i in range(n)], dtype="str"
            ),
            "code": pd.array([f"ID{i:05d}" for i in range(n)], dtype="str"),
            "y": pd.array(rng.choice(["Yes", "No"], n), dtype="str"),
        }
    )


def _fit(frame: pd.DataFrame, **spec: object) -> dict:
    return to_json(fit(frame, {**BASE, **spec}, target="y", task="binary"))


def test_types_are_inferred() -> None:
    doc = _fit(_frame())
    inputs = {c["name"]: c["type"] for c in doc["inputs"]}
    assert inputs == {
        "amount": "numeric",
        "count": "numeric",
        "city": "categorical",
        "when": "datetime",
        "charges": "numeric",
    }
    assert "code" in doc["dropped"]  # all-distinct text: an identifier
    names = [f["name"] for f in doc["features"]]
    assert {"when_year", "when_month", "when_day", "when_dayofweek"} <= set(names)
    out = apply(doc, _frame())
    assert out["charges"].isna().sum() == 4  # the ' ' blanks, as missing numbers
    assert out["y"].tolist() == [1 if v == "Yes" else 0 for v in _frame()["y"]]


def test_rare_and_unseen_categories_share_the_other_code() -> None:
    doc = _fit(_frame(), min_frequency=5)
    city = next(f for f in doc["features"] if f["name"] == "city")
    assert city["categories"] == ["paris", "lyon", "nice"]  # most frequent first; metz is rare
    new = _frame(4).assign(city=pd.array(["paris", "metz", "rome", None], dtype="str"))
    codes = apply(doc, new)["city"].tolist()
    assert codes[:3] == [0.0, 3.0, 3.0]  # rare and unseen -> code 3 ('other')
    assert np.isnan(codes[3])  # missing stays missing
    doc = _fit(_frame(), min_frequency=5, other_bucket=False)
    assert np.isnan(apply(doc, new)["city"].tolist()[2])


def test_onehot_numeric_transforms_impute_derived_rename() -> None:
    frame = _frame()
    frame.loc[:9, "amount"] = np.nan
    doc = _fit(
        frame,
        encoding="onehot",
        impute={"amount": "median", "city": "most_frequent"},
        missing_indicators=True,
        transforms={"n": {"winsorize": [0.1, 0.9], "log1p": True}, "amount": {"bins": 4}},
        derived={"per_count": "amount / n"},
        rename={"count": "n"},
        select=None,
    )
    out = apply(doc, frame)
    assert {"city=paris", "city=lyon", "amount_missing"} <= set(out.columns)
    assert "city" not in out.columns
    assert out["amount_missing"].sum() == 10
    assert set(out["amount"].dropna().unique()) <= {0.0, 1.0, 2.0, 3.0}  # 4 quantile bins
    lo, hi = frame["count"].quantile(0.1), frame["count"].quantile(0.9)
    assert out["n"].min() == pytest.approx(np.log1p(lo))
    assert out["n"].max() == pytest.approx(np.log1p(hi))
    assert np.isinf(out["per_count"]).sum() == 0  # x / 0 -> missing, not inf


def test_target_map_and_unseen_labels() -> None:
    frame = _frame()
    frame["y"] = frame["y"].str.replace("Yes", "Yes.")
    doc = _fit(frame, target_map={"Yes.": "Yes"})
    assert doc["target"]["classes"] == ["No", "Yes"]
    with pytest.raises(DataError, match=r"target 'y' has label\(s\) unseen in training: Maybe"):
        apply(doc, frame.assign(y="Maybe"))


def test_bad_feature_config_names_the_key() -> None:
    with pytest.raises(DataError, match=r"features\.drop names column\(s\) not in the data: nope"):
        _fit(_frame(), drop=["nope"])
    with pytest.raises(ConfigError, match=r"features\.transforms\.amount: unknown option"):
        _fit(_frame(), transforms={"amount": {"log2": True}})
    with pytest.raises(ConfigError, match=r"features\.transforms\.city: column is categorical"):
        _fit(_frame(), transforms={"city": {"log1p": True}})
    with pytest.raises(ConfigError, match=r"features\.derived\.z: unknown column\(s\) nothing"):
        _fit(_frame(), derived={"z": "nothing * 2"})


def test_custom_transform_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mytransforms.py").write_text(
        textwrap.dedent("""
        class Centre:
            def fit(self, frame):
                return {"mean": float(frame["amount"].mean())}

            def transform(self, frame, state):
                frame = frame.copy()
                frame["amount_centred"] = frame["amount"] - state["mean"]
                return frame
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    frame = _frame()
    doc = _fit(frame, custom=["mytransforms:Centre"])
    with pytest.raises(DataError, match=r"custom transform 'mytransforms:Centre' was not admitted"):
        apply(json.loads(json.dumps(doc)), frame)  # the interpreter imports nothing itself
    from mytransforms import Centre  # type: ignore[import-not-found]

    out = apply(json.loads(json.dumps(doc)), frame, {"mytransforms:Centre": Centre})
    assert out["amount_centred"].mean() == pytest.approx(0.0, abs=1e-9)
    assert doc["steps"][-1] == {
        "op": "custom",
        "fn": "mytransforms:Centre",
        "state": {"mean": frame["amount"].mean()},
    }
