"""The behaviour checks' fixtures: the session's trained project (churn, binary), its bundle
and raw test rows, and the checks run in-process on them (real LightGBM)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipespec.bundle import behavior
from pipespec.bundle.bundle import Bundle
from pipespec.stages.parquet import read_table

Run = Callable[..., dict[str, Any]]


@pytest.fixture(scope="package")
def checked(trained_project: Path) -> tuple[Bundle, Any]:
    bundle = Bundle.load(trained_project / "models" / "bundle")
    frame, _ = read_table(trained_project / "data" / "split" / "test.parquet")
    return bundle, frame


@pytest.fixture(scope="package")
def run_spec(checked: tuple[Bundle, Any], trained_project: Path) -> Run:
    """The JSON report of the checks ``spec`` (the search and latency off unless given)."""

    def run(**spec: Any) -> dict[str, Any]:
        bundle, frame = checked
        base = {"name": "t", "search": {"enabled": False}, "latency": {"enabled": False}}
        cfg = behavior.spec_from({**base, **spec}, where="test")
        found = behavior.run_checks(bundle, frame, cfg, base=trained_project, source="test")
        return found.to_json()

    return run


@pytest.fixture(scope="package")
def check_of() -> Callable[[dict[str, Any], str, str], dict[str, Any]]:
    """The verdict of check ``kind`` ``name`` in a JSON report."""

    def find(report: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
        return next(c for c in report["checks"] if c["kind"] == kind and c["name"] == name)

    return find
