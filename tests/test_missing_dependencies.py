"""CI never passes by skipping: a test whose shared data or outside tool is missing fails when
the environment variable CI is set, and skips (saying what is missing, and where it was looked
for) elsewhere. A tiny test file that uses the helpers runs in a pytest subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import REPO

TESTS = """
from helpers import shared, tool

def test_needs_data():
    shared("adult", "adult.data")

def test_needs_a_tool():
    tool("pipespec-no-such-tool")
"""


@pytest.mark.parametrize(("ci", "outcome"), [("1", "failure"), (None, "skipped")])
def test_missing_data_and_tools_fail_in_ci_and_skip_elsewhere(
    tmp_path: Path, ci: str | None, outcome: str
) -> None:
    (tmp_path / "test_needs.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text(f"[pytest]\npythonpath = {REPO / 'tests'}\n")
    nowhere = tmp_path / "no-shared-data"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PIPESPEC_SHARED_DATA"] = str(nowhere)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # a faster start: no plugin is needed
    if ci:
        env["CI"] = ci
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
         "test_needs.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == (1 if ci else 0), proc.stdout + proc.stderr
    results = {
        case.get("name"): [(child.tag, child.get("message", "")) for child in case]
        for case in ET.parse(report).iter("testcase")
    }
    assert set(results) == {"test_needs_data", "test_needs_a_tool"}, results
    for name, children in results.items():
        assert [tag for tag, _ in children] == [outcome], (name, children)
    data = results["test_needs_data"][0][1]
    assert f"{nowhere / 'adult' / 'adult.data'} is absent" in data
    assert "PIPESPEC_SHARED_DATA" in data
    assert "pipespec-no-such-tool is not installed" in results["test_needs_a_tool"][0][1]
    if ci:
        assert "CI is set" in data
