"""Derive expressions: the grammar (``core/expression.py``) refuses anything but a formula,
naming the token, and the numpy evaluator gives what pandas' ``eval`` gave on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import shared
from pipespec.core.documents import step_from
from pipespec.core.errors import DocumentError
from pipespec.core.expression import ExpressionError, evaluate, parse

# (expression, the message expected): each is refused, naming what is not allowed
REFUSED = [
    ("@pd.io.common.os.system('id > out.txt')", r"'@' is not allowed"),
    ("a @ b", r"'@' is not allowed"),
    ("a.__class__", r"attribute access is not allowed in an expression: '\.__class__'"),
    ("a.sum()", r"a call of anything but a function name is not allowed.*'a\.sum'"),
    ("__import__('os')", r"function '__import__' is not allowed"),
    ("__builtins__", r"a name with '__' is not allowed in an expression: '__builtins__'"),
    ("a__b + 1", r"a name with '__' is not allowed in an expression: 'a__b'"),
    ("eval('1')", r"function 'eval' is not allowed"),
    ("open('x')", r"function 'open' is not allowed"),
    ("a[0]", r"a subscript is not allowed in an expression: 'a\[0\]'"),
    ("log(a, base=2)", r"a keyword argument is not allowed in an expression: 'base='"),
    ("log(*a)", r"a starred argument is not allowed"),
    ("'text' + a", r"a str constant is not allowed in an expression: ''text''"),
    ("lambda: 1", r"'Lambda' is not allowed"),
    ("[a, b]", r"'List' is not allowed"),
    ("a if b else c", r"'x if c else y' \(use where\(c, x, y\)\)"),
    ("a in b", r"the operator is not allowed in an expression: 'in'"),
    ("a << 2", r"the operator is not allowed in an expression: '<<'"),
    ("log", r"a function without a call is not allowed in an expression: 'log'"),
    ("clip(a, 1)", r"function 'clip' takes 3 argument\(s\), not 2"),
    ("a +", r"cannot parse 'a \+'"),
    ("(" * 300 + "a" + ")" * 300, r"cannot parse '\(\(\(.*\.\.\.': too many nested paren"),
    ("-" * 200 + "a", r"nested more than 64 levels deep"),
    ("a\x00", r"NUL character"),
    ("", r"expression is empty"),
    ("a + " * 1000 + "a", r"longer than 2000 characters"),
]


@pytest.mark.parametrize(("text", "match"), REFUSED)
def test_anything_but_a_formula_is_refused_naming_the_token(text: str, match: str) -> None:
    with pytest.raises(ExpressionError, match=match):
        parse(text)


def test_a_derive_step_in_a_document_is_checked_when_it_is_read() -> None:
    step = {"op": "derive", "column": "z", "expr": "a.__class__", "uses": ["a"]}
    with pytest.raises(DocumentError, match=r"steps\[2\] \(op derive\): attribute access"):
        step_from(step, "steps[2]")
    step = {"op": "derive", "column": "z", "expr": "a / b", "uses": ["a"]}
    with pytest.raises(DocumentError, match=r"reads column\(s\) b that 'uses' does not list"):
        step_from(step, "steps[2]")
    parsed = parse("log1p(a) / where(b > 0, b, 1)")
    assert parsed.columns == ("a", "b")


@pytest.fixture(scope="module")
def housing() -> pd.DataFrame:
    frame = pd.read_csv(shared("california_housing", "housing.csv"))
    return frame.select_dtypes("number").astype("float64")


# Expressions pandas' eval (engine="python", the old interpreter) computed: the same values now.
SAME_AS_PANDAS = [
    "total_rooms / households",
    "total_bedrooms / total_rooms",  # total_bedrooms has missing values
    "population // households",
    "housing_median_age % 7",
    "median_income ** 2 - 3 * median_income + 1",
    "-longitude + latitude * 2.5",
    "log(median_income) + sqrt(population)",
    "log1p(total_rooms) - expm1(median_income / 10)",
    "abs(longitude) * sin(latitude) + cos(latitude) - tan(latitude / 100) + arctan(median_income)",
    "exp(median_income / 5)",
    "(median_income > 5) & (housing_median_age < 30)",
    "(median_income > 5) | (total_bedrooms > 500)",
    "total_rooms / (households - households)",  # x / 0: inf, made missing by the step
    "median_income >= 3.5",
    "total_bedrooms == total_bedrooms",  # NaN compares false
]


@pytest.mark.parametrize("text", SAME_AS_PANDAS)
def test_the_numpy_evaluator_matches_pandas_eval_on_real_data(
    housing: pd.DataFrame, text: str
) -> None:
    parsed = parse(text)
    columns = {c: housing[c].to_numpy() for c in parsed.columns}
    with np.errstate(all="ignore"):
        old = np.asarray(housing.eval(text, engine="python"), dtype="float64")
    new = evaluate(parsed, columns, len(housing))
    np.testing.assert_array_equal(np.isnan(new), np.isnan(old))
    np.testing.assert_allclose(new, old, rtol=1e-12, equal_nan=True)


def test_functions_beyond_pandas_eval(housing: pd.DataFrame) -> None:
    income, bedrooms = housing["median_income"].to_numpy(), housing["total_bedrooms"].to_numpy()
    columns = {"median_income": income, "total_bedrooms": bedrooms}
    rows = len(housing)
    got = evaluate(parse("clip(median_income, 2, 8)"), columns, rows)
    np.testing.assert_array_equal(got, np.clip(income, 2, 8))
    got = evaluate(parse("where(isnull(total_bedrooms), -1, total_bedrooms)"), columns, rows)
    np.testing.assert_array_equal(got, np.where(np.isnan(bedrooms), -1, bedrooms))
    assert (
        evaluate(parse("notnull(total_bedrooms)"), columns, rows).sum()
        == (~np.isnan(bedrooms)).sum()
    )
    got = evaluate(parse("maximum(median_income, 3) + minimum(total_bedrooms, 10)"), columns, rows)
    np.testing.assert_array_equal(got, np.fmax(income, 3) + np.fmin(bedrooms, 10))
    got = evaluate(parse("not (median_income > 3) and total_bedrooms > 0"), columns, rows)
    np.testing.assert_array_equal(got, (~(income > 3) & (bedrooms > 0)).astype(float))
    assert evaluate(parse("2 * 3"), columns, 4).tolist() == [6.0] * 4
