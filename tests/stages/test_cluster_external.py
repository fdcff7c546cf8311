"""compute.address against a cluster started the way clusters run: a `dask scheduler` process
and two `dask worker` processes, each in a folder of its own (not the project's). `pipespec
run` goes end to end on it: the stages connect to that scheduler, its workers do the work, no
LocalCluster is started, and the model is byte for byte the one a LocalCluster trains. An
address where nothing listens fails the run at once, naming compute.address."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from helpers import BIN, SMALL, run_cli
from pipespec.core.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

pytestmark = pytest.mark.slow

# Partitions of 1,000 rows: the training rows are placed on both workers.
DASK = ("compute=dask", "compute.partition_rows=1000", "compute.workers=2",
        "compute.memory_limit=1GiB")  # fmt: skip
# Files a train stage writes: the same on any cluster of two workers.
TRAINED = ("models/train/model.txt", "metrics/train.json", "plots/train/importance.csv")


@dataclass
class Cluster:
    address: str
    clients: set[str]  # the clients the scheduler had seen when the cluster was ready


def _clients(client: Client) -> set[str]:
    """Every client that has connected to the client's scheduler, itself included."""
    events = client.get_events("all")
    return {msg["client"] for _, msg in events if msg.get("action") == "add-client"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """`dask scheduler` on a free port of 127.0.0.1 and two `dask worker` processes of one
    thread, each process in its own process group, all of them killed at teardown."""
    from distributed import Client

    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *argv: str) -> subprocess.Popen[bytes]:
        folder = tmp_path / name
        folder.mkdir()
        with (folder / "log.txt").open("wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "dask"), *argv], cwd=folder, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    file = tmp_path / "scheduler.json"
    try:
        scheduler = start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
                          "--scheduler-file", str(file), "--no-dashboard",
                          "--dashboard-address", "127.0.0.1:0")  # fmt: skip
        deadline = time.monotonic() + 60
        while not file.exists():
            log = (tmp_path / "scheduler" / "log.txt").read_text()
            assert scheduler.poll() is None, f"dask scheduler exited:\n{log}"
            assert time.monotonic() < deadline, f"no scheduler file after 60 s:\n{log}"
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        for name in ("worker-1", "worker-2"):
            start(name, "worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--memory-limit", "1GiB", "--no-dashboard",
                  "--local-directory", str(tmp_path / name))  # fmt: skip
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            seen = _clients(client)
        yield Cluster(address, seen)
    finally:
        for proc in procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _work(cluster: Cluster) -> tuple[set[str], dict[str, int], dict[str, int]]:
    """What the cluster did since it was ready: the clients that connected (this one left
    out), the tasks each worker ran, and the tasks finished by key name (``train_part``...)."""
    from distributed import Client

    with Client(cluster.address, timeout="10s") as client:
        clients = _clients(client) - cluster.clients - {client.id}
        ran = client.run(lambda dask_worker: dask_worker.state.executed_count)
        done = client.run_on_scheduler(
            lambda dask_scheduler: {
                name: prefix.state_counts["memory"]
                for name, prefix in dask_scheduler.task_prefixes.items()
            }
        )
    return clients, ran, done


def test_run_on_an_external_scheduler_and_workers(cluster: Cluster, new_project) -> None:
    root = new_project()
    proc = run_cli("run", *SMALL, *DASK, f"compute.address={cluster.address}", cwd=root)
    out = proc.stdout + proc.stderr
    assert "ran: load, validate, split, featurize, train, package, evaluate" in out
    assert "lightgbm.dask on 2 workers" in out
    for path in (*TRAINED, "metrics/evaluate.json", "models/bundle/model.txt"):
        assert (root / path).is_file(), path
    assert json.loads((root / "metrics" / "evaluate.json").read_text())["test"]["auc"] > 0.6

    clients, ran, done = _work(cluster)
    # load, validate, split, featurize and train each connected to this scheduler...
    assert len(clients) >= 5, clients
    # ...whose two workers did the work: each ran tasks, and each trained one LightGBM machine
    assert len(ran) == 2
    assert all(count > 0 for count in ran.values()), ran
    assert done.get("train_part") == 2, done  # lightgbm.dask's _train_part, one per worker
    # and no stage started a LocalCluster of its own (its workers' scratch space)
    scratch = root / ".pipespec" / "dask"
    assert not scratch.exists()

    # The train stage again, with no address: a LocalCluster of two workers of its own
    # (what plain `dvc repro` does) trains the same model from the same features.
    on_cluster = {path: (root / path).read_bytes() for path in TRAINED}
    run_cli("compose", *SMALL, *DASK, cwd=root)
    local = run_cli("stage", "train", cwd=root)
    assert "lightgbm.dask on 2 workers" in local.stdout + local.stderr
    assert scratch.is_dir()  # the check above would have seen a LocalCluster
    for path, content in on_cluster.items():
        assert (root / path).read_bytes() == content, f"{path} differs on a LocalCluster"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_address_where_nothing_listens_fails_at_once(new_project) -> None:
    root = new_project()
    address = f"tcp://127.0.0.1:{_free_port()}"
    proc = run_cli("run", *SMALL, *DASK, f"compute.address={address}", cwd=root, check=False)
    assert proc.returncode == 6, proc.stderr  # a stage failed under dvc repro
    message = f"cannot reach the Dask scheduler at {address} (compute.address)"
    assert message in proc.stderr
    assert "nothing accepts connections there" in proc.stderr
    assert "exited with 2" in proc.stderr  # the stage's own code: a configuration error
    assert "Traceback" not in proc.stderr
    assert not (root / "data" / "load" / "data.parquet").exists()
    assert not (root / ".pipespec" / "dask").exists()  # no LocalCluster instead

    # distributed alone would retry a refused connection for its whole timeout (10 s)
    from pipespec.stages.cluster import connect

    ctx = SimpleNamespace(compute={"address": address}, root=root)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=re.escape(message)), connect(ctx):
        pass
    assert time.monotonic() - start < 5
