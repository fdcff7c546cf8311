"""The parts of the Spark trainer that need no Spark: LightGBM's network parameters and the
machines' ranking for the barrier stage."""

from __future__ import annotations

import json

from pipespec.stages.train_spark import network_params, ranked_hosts


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
