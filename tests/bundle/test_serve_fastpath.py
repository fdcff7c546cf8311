"""The serving fast path (``pipespec.bundle.fastpath``) against the pandas path it replaces:
over records of the shared datasets and the embedded data, and over many bad values, both
find the same problems (same 422 answers) and compute the same features, hence the same
predictions, to floating-point equality; and they predict what batch prediction
(``Bundle.predict``) predicts. Bundles are built in-process (featurize's ``fit``, a small
LightGBM model, the input schema) and loaded from disk like any bundle."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers import SHARED_DATA
from pipespec.bundle import serve
from pipespec.bundle.bundle import (
    CARD,
    CARD_MD,
    MODEL,
    PROFILE,
    SCHEMA,
    TRANSFORMS,
    Bundle,
    dumps,
    write,
)
from pipespec.bundle.fastpath import FastPath
from pipespec.bundle.schema import NonFinite, infer
from pipespec.bundle.transforms import apply

ROWS = 400  # records per bundle compared row by row


def build(
    root: Path,
    name: str,
    frame: pd.DataFrame,
    *,
    target: str,
    task: str,
    spec: dict[str, Any] | None = None,
    range_margin: float | None = 0.5,
    closed: bool = True,
) -> Bundle:
    """A bundle for ``frame`` as the package stage makes one, small and quick."""
    import lightgbm as lgb

    from pipespec.stages.featurize import fit

    transforms = fit(frame, spec or {}, target=target, task=task)
    features = apply(transforms, frame)
    names = [f["name"] for f in transforms["features"]]
    categorical = [f["name"] for f in transforms["features"] if f["type"] == "categorical"]
    classes = transforms["target"].get("classes")
    params: dict[str, Any] = {
        "objective": task,
        "num_leaves": 15,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 1,
        "seed": 1,
    }
    if task == "multiclass":
        params["num_class"] = len(classes)
    data = lgb.Dataset(features[names], label=features[target], categorical_feature=categorical)
    booster = lgb.train(params, data, num_boost_round=12)
    schema = infer(
        frame.drop(columns=[target]),
        transforms,
        range_margin=range_margin,
        closed_categories=closed,
        ignored=[],
    )
    output = {
        "task": task,
        "target": target,
        "classes": classes,
        "threshold": 0.5 if task == "binary" else None,
    }
    policy = {"on_invalid": "fail", "max_records": 1000, "max_body_bytes": 1 << 20}
    files = {
        MODEL: booster.model_to_string().encode(),
        TRANSFORMS: dumps(transforms),
        SCHEMA: dumps({**schema.to_json(), "output": output, "policy": policy}),
        PROFILE: dumps({}),
        CARD: dumps({"name": name}),
        CARD_MD: b"# test bundle\n",
    }
    write(root / name, files)
    return Bundle.load(root / name)


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON numbers, strings and nulls, through json itself."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append(
            {
                k: (None if pd.isna(v) else getattr(v, "item", lambda v=v: v)())
                for k, v in row.items()
            }
        )
    return json.loads(json.dumps(out), parse_constant=NonFinite)


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset {path} is not available")
    return path


# --- the bundles --------------------------------------------------------------------------


def embedded(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    from pipespec.stages.embedded import generate

    frame = generate(n, seed=seed)
    rng = np.random.default_rng(seed)
    frame["flag"] = rng.random(n) < 0.3  # a boolean column: numeric, via to_numeric
    frame["tier"] = rng.choice([True, False], n)  # declared categorical: boolean categories
    frame["score"] = rng.choice([0.5, 1.0, 1.25, 2.0, 1e16, 3.0, 0.1 + 0.2, 1 / 3], n)  # floats
    frame["level"] = rng.integers(1, 6, n)  # categorical integers
    frame["code"] = rng.choice(["1", "2.5", " 7", "1e3", "-3", ""], n)  # numbers as text
    return frame.drop(columns=["customer_id"], errors="ignore")


def titanic() -> pd.DataFrame:
    return pd.read_csv(shared("titanic", "train.csv")).drop(columns=["PassengerId"])


def house_prices() -> pd.DataFrame:
    frame = pd.read_csv(shared("house_prices", "train.csv"), keep_default_na=False, na_values=[""])
    return frame.drop(columns=["Id"])


def california() -> pd.DataFrame:
    return pd.read_csv(shared("california_housing", "housing.csv"))


def adult() -> pd.DataFrame:
    columns = [
        "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
        "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
        "hours-per-week", "native-country", "income",
    ]  # fmt: skip
    frame = pd.read_csv(
        shared("adult", "adult.data"),
        header=None,
        names=columns,
        skipinitialspace=True,
        na_values=["?"],
    )
    return frame.sample(6000, random_state=0).reset_index(drop=True)


def telco() -> pd.DataFrame:
    path = shared("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    return pd.read_csv(path).drop(columns=["customerID"])


def multiclass() -> pd.DataFrame:
    path = shared("lightgbm_examples", "multiclass_classification", "multiclass.train")
    frame = pd.read_csv(path, sep="\t", header=None)
    frame.columns = [f"Column_{i}" for i in range(frame.shape[1])]
    return frame.iloc[:, :12].sample(3000, random_state=0).reset_index(drop=True)


CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "embedded": (
        embedded,
        {
            "target": "churned",
            "task": "binary",
            "spec": {"categorical": ["tier", "score", "level"], "drop": []},
        },
    ),
    "embedded-open": (
        embedded,
        {
            "target": "churned",
            "task": "binary",
            "spec": {
                "categorical": ["tier", "score", "level"],
                "impute": {"age": "median", "region": "most_frequent", "level": "most_frequent"},
                "missing_indicators": True,
                "transforms": {
                    "monthly_charges": {"winsorize": [0.05, 0.95], "log1p": True, "bins": 6},
                    "total_charges": {"clip": [100, 5000]},
                    "tenure_months": {"clip": [60, 3]},
                },
                "rename": {"support_calls": "calls"},
                "other_bucket": False,
            },
            "range_margin": 0.0,
            "closed": False,
        },
    ),
    "embedded-onehot": (
        embedded,
        {
            "target": "churned",
            "task": "binary",
            "spec": {
                "categorical": ["tier", "score", "level"],
                "encoding": "onehot",
                "drop": ["payment_method"],  # categories with spaces: see below
                "impute": {"tier": "most_frequent"},
            },
            "range_margin": None,
            "closed": False,
        },
    ),
    "titanic": (
        titanic,
        {"target": "Survived", "task": "binary", "spec": {"categorical": ["Pclass"]}},
    ),
    "titanic-onehot": (
        titanic,
        {
            "target": "Survived",
            "task": "binary",
            "spec": {
                "categorical": ["Pclass"],
                "drop": ["Ticket", "Cabin"],  # categories with spaces: see below
                "encoding": "onehot",
                "min_frequency": 5,
                "max_categories": 12,
                "impute": {"Embarked": "most_frequent", "Age": "constant:30"},
                "missing_indicators": True,
            },
            "closed": False,
        },
    ),
    "house_prices": (
        house_prices,
        {"target": "SalePrice", "task": "regression", "spec": {"categorical": ["MSSubClass"]}},
    ),
    "california": (
        california,
        {
            "target": "median_house_value",
            "task": "regression",
            "spec": {
                "categorical": ["housing_median_age"],
                "impute": {"total_bedrooms": "median"},
                "missing_indicators": True,
                "transforms": {"population": {"log1p": True, "bins": 10}},
            },
        },
    ),
    "adult": (
        adult,
        {
            "target": "income",
            "task": "binary",
            "spec": {"min_frequency": 20},
            "range_margin": 0.1,
        },
    ),
    "telco": (
        telco,
        {"target": "Churn", "task": "binary", "spec": {"target_map": {"No": 0, "Yes": 1}}},
    ),
    "multiclass": (multiclass, {"target": "Column_0", "task": "multiclass"}),
}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Bundle, pd.DataFrame]]:
    """name -> (bundle, its raw rows without the target), built once for the module."""
    return {}


def get(
    bundles: dict[str, tuple[Bundle, pd.DataFrame]], name: str, tmp: Path
) -> tuple[Bundle, pd.DataFrame]:
    if name not in bundles:
        load, options = CASES[name]
        frame = load()
        bundle = build(tmp, name, frame, **options)
        bundles[name] = (bundle, frame.drop(columns=[options["target"]]))
    return bundles[name]


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundles")


# --- comparing the two paths -------------------------------------------------------------


def outcome(fn: Any, bundle: Bundle, records: Any, single: bool) -> tuple[Any, ...]:
    """What the service would answer: predictions, a 4xx with its errors, or a crash."""
    try:
        return ("ok", fn(bundle, records, single=single))
    except serve._Reject as exc:
        return ("reject", exc.status, exc.message, exc.errors)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


def problems_of(problems: list[Any]) -> list[tuple[int, str, str, str]]:
    return [(p.row, p.column, p.reason, p.message()) for p in problems]


def assert_same(bundle: Bundle, records: list[dict[str, Any]]) -> None:
    """Both paths agree on ``records``: every problem, and for the valid ones every feature
    value and every prediction, exactly."""
    fast = bundle.fast_path
    assert fast is not None
    conformed = fast.conform(records)
    assert conformed is not None, "the fast path fell back on plain JSON records"
    columns, problems = conformed
    with warnings.catch_warnings():
        # a float category beyond int64 makes numpy warn as it casts (a key it cannot find)
        warnings.simplefilter("ignore", RuntimeWarning)
        checked, expected = serve.check_frame(bundle, records)
    assert problems_of(problems) == problems_of(expected)
    bad = {p.row for p in problems}
    good = [r for i, r in enumerate(records) if i not in bad]
    if not good:
        return
    again = fast.conform(good)
    assert again is not None
    columns, none = again
    assert none == []
    matrix = fast.matrix(columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        checked, _ = serve.check_frame(bundle, good)
        frame = apply(bundle.transforms, checked.frame)[bundle.feature_names]
        reference = frame.to_numpy(dtype="float64")
        slow = serve.predict_frame(bundle, good)
    assert matrix.shape == reference.shape
    same = (matrix == reference) | (np.isnan(matrix) & np.isnan(reference))
    if not same.all():
        row, col = (int(x[0]) for x in np.nonzero(~same))
        raise AssertionError(
            f"feature {bundle.feature_names[col]} of {good[row]}: "
            f"{matrix[row, col]!r} (fast) != {reference[row, col]!r} (pandas)"
        )
    assert serve.predict_records(bundle, good) == slow


def weird_values(bundle: Bundle, frame: pd.DataFrame) -> list[Any]:
    """Values a client might send in any field: every JSON type, edge numbers, edge text,
    and the categories of every column (in the wrong column, mostly)."""
    values: list[Any] = [
        None, True, False, 0, 1, -1, 2, 2.0, 2.5, -0.0, 1e-300, 1e300, -1e300, 2**53 + 1,
        2**63, -(2**63) - 1, 10**400, -(10**400), float("inf"), float("-inf"),
        NonFinite("NaN"), NonFinite("Infinity"), NonFinite("-Infinity"),
        "", " ", "0", "12", " 12 ", "1e3", "-4.5", "1,5", "nan", "NaN", "inf", "true", "True",
        "x", "NA", "é", "日本", "\x00", [], [1], {}, {"a": 1},
    ]  # fmt: skip
    for col in bundle.schema.columns:
        if col.categories:
            values.extend(col.categories[:3])
        if col.low is not None and col.high is not None:
            values.extend([col.low, col.high, col.low - 1, col.high + 1, (col.low + col.high) / 2])
    return values


def mutated(
    records: list[dict[str, Any]], bundle: Bundle, values: list[Any]
) -> list[dict[str, Any]]:
    """Every field with every weird value (in records taken in turn), and every field left
    out."""
    out = []
    for name in bundle.schema.names:
        for j, value in enumerate(values):
            out.append({**records[j % len(records)], name: value})
        out.append({k: v for k, v in records[len(out) % len(records)].items() if k != name})
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_same_problems_features_and_predictions(
    name: str, bundles: dict[str, Any], bundle_root: Path
) -> None:
    bundle, frame = get(bundles, name, bundle_root)
    records = json_records(frame.head(ROWS))
    assert_same(bundle, records)
    bad = mutated(records[:12], bundle, weird_values(bundle, frame))
    for start in range(0, len(bad), 500):
        assert_same(bundle, bad[start : start + 500])
    # values of other columns in other rows: numbers where text goes and back
    shuffled = []
    names = bundle.schema.names
    for i, record in enumerate(records[:60]):
        other = records[(i * 7 + 3) % len(records)]
        a, b = names[i % len(names)], names[(i * 5 + 1) % len(names)]
        shuffled.append({**record, a: other.get(b)})
    assert_same(bundle, shuffled)


@pytest.mark.parametrize("name", list(CASES))
def test_single_records_get_the_same_answers(
    name: str, bundles: dict[str, Any], bundle_root: Path
) -> None:
    """Whole answers, message included, one record at a time and as lists."""
    bundle, frame = get(bundles, name, bundle_root)
    records = json_records(frame.head(40))
    rng = np.random.default_rng(11)
    bad = mutated(records[:2], bundle, weird_values(bundle, frame))
    picks = [bad[int(i)] for i in rng.choice(len(bad), size=min(60, len(bad)), replace=False)]
    for record in records[:20] + picks:
        fast = outcome(serve.predict_records, bundle, [record], True)
        slow = outcome(serve.predict_frame, bundle, [record], True)
        assert fast == slow, record
    for batch in (records, records[:3] + picks[:5], picks, picks * 3):
        assert outcome(serve.predict_records, bundle, batch, False) == outcome(
            serve.predict_frame, bundle, batch, False
        )


@pytest.mark.parametrize("name", list(CASES))
def test_predictions_match_batch_prediction(
    name: str, bundles: dict[str, Any], bundle_root: Path
) -> None:
    """What the service answers for a record is what `Bundle.predict` gives its row."""
    bundle, frame = get(bundles, name, bundle_root)
    rows = frame.head(ROWS)
    predicted = bundle.predict(rows, on_invalid="skip")
    assert len(predicted) > ROWS // 2
    records = json_records(rows.loc[predicted.index])
    assert bundle.fast_path is not None
    answers = serve.predict_records(bundle, records)
    if bundle.task == "regression":
        assert [a["value"] for a in answers] == predicted["prediction"].tolist()
    elif bundle.task == "binary":
        assert [a["probability"] for a in answers] == predicted["prediction"].tolist()
        assert [a["label"] for a in answers] == predicted["label"].tolist()
    else:
        for k, key in enumerate(str(c) for c in bundle.classes):
            assert [a["probabilities"][key] for a in answers] == predicted[f"p_{k}"].tolist()
        assert [a["label"] for a in answers] == predicted["label"].tolist()


def test_what_the_fast_path_leaves_to_pandas(bundle_root: Path) -> None:
    """Bundles with derived columns or dates, and values that are not what json.loads makes
    (or text pandas cannot hold), take the pandas path and get its very answers."""
    frame = embedded(800)
    derived = build(
        bundle_root,
        "derived",
        frame,
        target="churned",
        task="binary",
        spec={"derived": {"per_month": "total_charges / (tenure_months + 1)"}},
    )
    assert derived.fast_path is None
    record = json_records(frame.drop(columns=["churned"]).head(1))[0]
    assert serve.predict_records(derived, [record]) == serve.predict_frame(derived, [record])

    # one-hot columns named after categories with spaces: LightGBM renames its features
    # ('payment_method=credit_card'); the columns are matched by position, so both paths
    # predict, and alike
    onehot = build(bundle_root, "spaces", frame, target="churned", task="binary",
                   spec={"encoding": "onehot"})  # fmt: skip
    assert "payment_method=credit card" in onehot.feature_names
    assert "payment_method=credit_card" in onehot.booster.feature_name()
    assert onehot.fast_path is not None
    records = json_records(frame.drop(columns=["churned"]).head(50))
    fast = serve.predict_records(onehot, records)
    assert fast == serve.predict_frame(onehot, records)
    assert fast[0]["probability"] == pytest.approx(
        float(onehot.predict(frame.drop(columns=["churned"]).head(1))["prediction"].iloc[0])
    )

    dated = frame.assign(signup=pd.date_range("2020-01-01", periods=len(frame), freq="D"))
    dated["signup"] = dated["signup"].dt.strftime("%Y-%m-%d")
    assert build(bundle_root, "dated", dated, target="churned", task="binary").fast_path is None

    bundle = build(bundle_root, "plain", frame, target="churned", task="binary")
    fast = bundle.fast_path
    assert fast is not None
    for field, value in [
        ("region", "\ud800"),  # a lone surrogate: pandas cannot hold it
        ("age", "\udcff"),
        ("age", np.float64(40.0)),  # not from json.loads
        ("region", pd.NA),
        ("age", (1, 2)),
    ]:
        odd = {**record, field: value}
        assert fast.conform([odd]) is None, (field, value)
        assert outcome(serve.predict_records, bundle, [odd], True) == outcome(
            serve.predict_frame, bundle, [odd], True
        )
    for value in ("\ud800", "caf\u00e9\udc80"):  # not text a table can hold: a 422, not a 500
        answer = outcome(serve.predict_records, bundle, [{**record, "region": value}], True)
        assert answer[:2] == ("reject", 422), answer
        assert answer[3][0]["field"] == "region"


def test_errors_list_is_capped_and_ordered(bundle_root: Path) -> None:
    frame = embedded(500)
    bundle = build(bundle_root, "capped", frame, target="churned", task="binary")
    records = json_records(frame.drop(columns=["churned"]).head(30))
    bad = [{**r, "age": "x", "region": 5} for r in records]
    del bad[3]["contract"]
    fast = outcome(serve.predict_records, bundle, bad, False)
    assert fast == outcome(serve.predict_frame, bundle, bad, False)
    assert fast[0] == "reject"
    assert fast[1] == 422
    assert len(fast[3]) == serve.MAX_ERRORS
    assert fast[2].startswith("record 0: field 'age': wrong type: 'x'")
    assert "(and 60 more)" in fast[2]
    assert [e["field"] for e in fast[3][6:9]] == ["age", "region", "contract"]


def test_the_service_answers_the_same_either_way(bundle_root: Path) -> None:
    """Real requests through the app: the fast path and the pandas path (forced) give
    byte-identical answers."""
    frame = embedded(600)
    bodies: list[bytes] = []
    records = json_records(frame.drop(columns=["churned"]).head(5))
    good = records[0]
    bodies.append(json.dumps(good).encode())
    bodies.append(json.dumps(records).encode())
    bodies.append(json.dumps({**good, "age": "forty"}).encode())
    bodies.append(json.dumps({**good, "age": "__X__"}).replace('"__X__"', "NaN").encode())
    bodies.append(
        json.dumps({**good, "monthly_charges": "__X__"}).replace('"__X__"', "1e999").encode()
    )
    bodies.append(
        json.dumps({**good, "tenure_months": "__X__"}).replace('"__X__"', "9" * 400).encode()
    )
    bodies.append(json.dumps({**good, "region": "mars"}).encode())
    bodies.append(json.dumps({**good, "contract": None}).encode())
    bodies.append(json.dumps({k: v for k, v in good.items() if k != "age"}).encode())
    bodies.append(json.dumps([good, good, {**good, "age": "x"}]).encode())
    bodies.append(json.dumps([good, "x"]).encode())
    bodies.append(b"[]")
    bodies.append(b'{"age": 40,')

    def answers(force_pandas: bool) -> list[tuple[int, bytes]]:
        import asyncio

        import httpx

        bundle = build(bundle_root, "app", frame, target="churned", task="binary")
        if force_pandas:
            bundle.__dict__["fast_path"] = None  # the cached property, overridden
        app = serve.create_app(bundle)

        async def post_all() -> list[tuple[int, bytes]]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                out = []
                for body in bodies:
                    answer = await client.post(
                        "/predict", content=body, headers={"content-type": "application/json"}
                    )
                    out.append((answer.status_code, answer.content))
                return out

        return asyncio.run(post_all())

    fast, slow = answers(False), answers(True)
    assert fast == slow
    assert fast[0][0] == 200
    assert json.loads(fast[2][1])["errors"][0]["field"] == "age"


def test_fast_path_does_not_build_frames(
    bundle_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = embedded(500)
    bundle = build(bundle_root, "noframes", frame, target="churned", task="binary")
    records = json_records(frame.drop(columns=["churned"]).head(3))
    expected = serve.predict_frame(bundle, records)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pandas path ran")

    monkeypatch.setattr(serve, "predict_frame", refuse)
    monkeypatch.setattr(pd, "DataFrame", refuse)
    assert serve.predict_records(bundle, records) == expected
    assert serve.predict_records(bundle, records[:1], single=True) == expected[:1]


def test_compile_refuses_what_it_does_not_cover() -> None:
    from pipespec.bundle.schema import Column, InputSchema

    schema = InputSchema((Column("x", "numeric", "float", True),))
    base = {
        "version": 2,
        "inputs": [{"name": "x", "type": "numeric"}],
        "features": [{"name": "x", "type": "numeric"}],
        "target": {"name": "y", "task": "regression"},
        "steps": [],
    }
    assert FastPath.compile(schema, base, ["x"]) is not None
    for change in [
        {"version": 1},
        {"steps": [{"op": "custom", "fn": "m:C", "state": {}}]},
        {"steps": [{"op": "derive", "column": "z", "expr": "x * 2", "uses": ["x"]}]},
        {"steps": [{"op": "nope", "column": "x"}]},
        {"steps": [{"op": "clip", "column": "x", "lower": "a", "upper": None}]},
        {"steps": [{"op": "log1p", "column": "w"}]},
        {"target": {"name": "x", "task": "regression"}},
        {"features": [{"name": "w", "type": "numeric"}]},
    ]:
        assert FastPath.compile(schema, {**base, **change}, ["x"]) is None, change
    assert FastPath.compile(schema, base, ["w"]) is None
    dates = InputSchema((Column("x", "datetime", "str", True),))
    assert FastPath.compile(dates, base, ["x"]) is None
    compiled = FastPath.compile(schema, base, ["x"])
    assert compiled is not None
    assert math.isnan(compiled.matrix({"x": np.array([math.nan])})[0, 0])
