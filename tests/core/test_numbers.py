"""core.numbers: the one formatter every table, report and card uses."""

from __future__ import annotations

import numpy as np

from pipespec.core.numbers import number


def test_significant_digits_by_default_and_missing_as_a_dash() -> None:
    assert number(0.123456) == "0.1235"
    assert number(np.float64(0.1234567), 6) == "0.123457"
    assert number(None) == "-"
    assert number(3) == "3"  # integers as they are
    assert number(True) == "True"  # not a number to format
    assert number("a") == "a"


def test_fixed_decimals_and_the_small_value_fallback() -> None:
    assert number(np.int64(2), 6, notation="f", missing="") == "2.000000"
    assert number(None, notation="f", missing="") == ""
    assert number(1e-5, 3, notation="f-or-e") == "1.00e-05"  # 0.000 would hide it
    assert number(0.5, 3, notation="f-or-e") == "0.500"
    assert number(7, 3, notation="f-or-e") == "7"
    assert number(0.0, 3, notation="f-or-e") == "0.000"
