"""The parts of the Spark backend that need no Spark: LightGBM's network parameters and the
machines' ranking for the barrier stage, and the session's refusals before any JVM starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipespec.core.errors import ConfigError
from pipespec.stages.distributed import network_params, ranked_hosts
from pipespec.stages.spark import session


def test_machines_are_ranked_by_their_block_not_by_arrival() -> None:
    messages = [json.dumps([1, "10.0.0.2", 40001]), json.dumps([0, "10.0.0.1", 40000])]
    hosts = ranked_hosts(messages)
    assert hosts == [("10.0.0.1", 40000), ("10.0.0.2", 40001)]
    assert ranked_hosts(list(reversed(messages))) == hosts
    params = network_params(hosts, 1)
    assert params == {
        "tree_learner": "data",
        "num_machines": 2,
        "machines": "10.0.0.1:40000,10.0.0.2:40001",
        "local_listen_port": 40001,
        "pre_partition": True,
    }


def test_a_standalone_master_that_refuses_fails_before_a_session(tmp_path: Path) -> None:
    compute = {"backend": "spark", "master": "spark://127.0.0.1:9", "executors": 2}
    with (
        pytest.raises(ConfigError, match=r"cannot reach the Spark master at spark://127\.0\.0\.1:9 "
                      r"\(compute\.master\): nothing accepts connections there"),
        session(compute, tmp_path),
    ):  # fmt: skip
        pass
