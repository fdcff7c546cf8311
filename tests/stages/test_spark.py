"""The Spark session's refusals before any JVM starts (``stages.spark``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipespec.core.errors import ConfigError
from pipespec.stages.spark import session


def test_a_standalone_master_that_refuses_fails_before_a_session(tmp_path: Path) -> None:
    compute = {"backend": "spark", "master": "spark://127.0.0.1:9", "executors": 2}
    with (
        pytest.raises(ConfigError, match=r"cannot reach the Spark master at spark://127\.0\.0\.1:9 "
                      r"\(compute\.master\): nothing accepts connections there"),
        session(compute, tmp_path),
    ):  # fmt: skip
        pass
