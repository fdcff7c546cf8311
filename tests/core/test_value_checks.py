"""The value checks on plain params: sizes read as Dask reads them."""

from __future__ import annotations

import pytest

from pipespec.core.value_checks import byte_size, check_values

SIZES = ["4GiB", "500MB", "500 MB", "1e9", "2e9 kB", "MB", "kib", "10", "1.5 GB", "3T", "0", "5k"]
NOT_SIZES = ["lots", "4XB", "5 foos", "GiB4", "1..5GB", "nan", "-2GB", "inf"]


@pytest.mark.parametrize("text", SIZES)
def test_a_size_is_read_as_dask_reads_it(text: str) -> None:
    from dask.utils import parse_bytes

    assert byte_size(text) == parse_bytes(text)


@pytest.mark.parametrize("text", NOT_SIZES)
def test_not_a_size(text: str) -> None:
    assert byte_size(text) is None


def test_dask_refuses_what_is_not_a_size() -> None:
    from dask.utils import parse_bytes

    for text in ("lots", "4XB", "5 foos", "GiB4", "1..5GB", "nan"):
        with pytest.raises(ValueError, match="Could not interpret"):
            parse_bytes(text)


def test_absent_groups_are_skipped() -> None:
    assert check_values({"hparams_search": None, "model": {"name": "x", "params": {}}}) == []
