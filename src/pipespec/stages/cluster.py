"""``compute=dask`` and ``compute=spark``: the cluster a stage runs on, and tables as
directories of Parquet parts.

A stage connects to ``compute.address``, or to the cluster that ``pipespec run`` started for
the whole run (its address is in ``PIPESPEC_DASK_ADDRESS``), or else starts a ``LocalCluster``
of its own (plain ``dvc repro``). Workers read and write the project's files directly, so an
external cluster's workers must see the project's folder (a shared filesystem).

A table written under Dask is a directory of ``part.NNNNN.parquet`` files, one per partition,
each carrying the same pipespec metadata as a single-file table; readers here and
``parquet.read_table`` accept both forms. Outputs are written into temporary directories next
to their targets and moved into place together when every partition has succeeded.

``compute=spark`` maps the same bodies over the same parts on a Spark session's executors
(``stages.spark``): its tables are partitioned as on Dask.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.errors import ConfigError
from pipespec.core.progress import progress

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from pipespec.stages.context import StageContext

ENV_ADDRESS = "PIPESPEC_DASK_ADDRESS"  # set by `pipespec run`: one cluster for all its stages


# --- the cluster -----------------------------------------------------------------------


def local_cluster(compute: dict[str, Any], root: Path) -> LocalCluster:
    """A LocalCluster sized by the ``compute`` group (worker processes, threads, memory;
    their values were checked at composition, ``core.value_checks``)."""
    from distributed import Client, LocalCluster

    workers, threads = int(compute["workers"]), int(compute["threads_per_worker"])
    memory = compute.get("memory_limit") or "auto"
    scratch = root / ".pipespec" / "dask"
    scratch.mkdir(parents=True, exist_ok=True)
    import dask

    # No work stealing: a task runs where its data is, so placement stays as pinned() sets it.
    with dask.config.set({"distributed.scheduler.work-stealing": False}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            memory_limit=memory,
            processes=True,
            dashboard_address=None,
            local_directory=str(scratch),
            silence_logs=logging.ERROR,
        )
    from pipespec.stages.workers import QuietStdout

    with Client(cluster) as client:
        client.register_plugin(QuietStdout())
    return cluster


@contextmanager
def connect(ctx: StageContext, *, ranked: bool = False) -> Iterator[Client]:
    """A client of the run's cluster (see the module's docstring for which one). ``ranked``:
    a client whose ``who_has`` lists data in worker order (see ``ranked_client``)."""
    from distributed import Client

    client_class = ranked_client() if ranked else Client
    address = ctx.compute.get("address") or os.environ.get(ENV_ADDRESS)
    if address:
        key = "compute.address" if ctx.compute.get("address") else ENV_ADDRESS
        client = _reach(client_class, address, key)
        try:
            yield client
        finally:
            client.close()
        return
    with local_cluster(ctx.compute, ctx.root) as cluster, client_class(cluster) as client:
        yield client


def _reach(client_class: type[Client], address: str, key: str) -> Client:
    """A client of the scheduler at ``address`` (given by ``key``). distributed retries a
    refused connection until the timeout: a short first try, and the long wait only when
    something listens at the address (a scheduler slow to answer)."""
    problem = f"cannot reach the Dask scheduler at {address} ({key})"
    with contextlib.suppress(OSError, TimeoutError):
        return client_class(address, timeout="1s")
    if not _listening(address):
        raise ConfigError(f"{problem}: nothing accepts connections there")
    try:
        return client_class(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"{problem}: {exc}") from None


def _listening(address: str) -> bool:
    """Whether something accepts TCP connections at a ``tcp://host:port`` address (for other
    protocols, assumed so)."""
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except ValueError:
        return True
    if scheme != "tcp":
        return True
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def ranked_client() -> type[Client]:
    """A Client whose ``who_has`` lists keys by the position of the worker that holds them
    in ``workers()``. ``lightgbm.dask`` ranks its machines (and so decides which rank builds
    which feature's bins from which rows) in ``who_has`` order, which distributed returns in
    set order: arbitrary from run to run. With ``pinned`` data this makes the ranks fixed."""
    from distributed import Client

    class RankedClient(Client):
        def who_has(self, futures: Any = None, **kwargs: Any) -> Any:
            found = super().who_has(futures, **kwargs)
            order = {name: i for i, name in enumerate(workers(self))}
            return dict(
                sorted(
                    found.items(),
                    key=lambda kv: min((order.get(w, len(order)) for w in kv[1]), default=0),
                )
            )

    return RankedClient


def workers(client: Client) -> list[str]:
    """The cluster's worker addresses, sorted (a stable order to place partitions by)."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def pinned(client: Client, table: dd.DataFrame) -> dd.DataFrame:
    """``table`` computed into the workers' memory as one partition per worker, the rows in
    their order and the i-th block on the i-th worker by address: a fixed placement, so that
    distributed training (whose machine ranks follow it) is reproducible."""
    import dask.dataframe as dd
    from distributed import wait

    names = workers(client)
    blocks = table.repartition(npartitions=min(len(names), table.npartitions)).to_delayed()
    parts = [
        client.persist(block, workers=[name], allow_other_workers=False)
        for block, name in zip(blocks, names, strict=False)
    ]
    wait(parts)
    return dd.from_delayed(parts, meta=table._meta, verify_meta=False)


# --- running a stage's body on every partition ------------------------------------------


class Local:
    """The local backend: a stage's body runs in this process on each part in order (a
    table written locally is one part)."""

    dask = False

    def map(
        self, parts: Sequence[Any], func: Callable[..., Any], *args: Any, what: str
    ) -> list[Any]:
        """``func(index, part, *args)`` for every part, with a progress bar when there are
        several; the results in part order."""
        if len(parts) == 1:
            return [func(0, parts[0], *args)]
        with progress(what, len(parts)) as bar:
            out = []
            for i, part in enumerate(parts):
                out.append(func(i, part, *args))
                bar.advance()
            return out


class Dask:
    """The Dask backend: the body runs on the cluster's workers, one task per partition."""

    dask = True

    def __init__(self, client: Client) -> None:
        self.client = client

    def map(
        self, parts: Sequence[Any], func: Callable[..., Any], *args: Any, what: str
    ) -> list[Any]:
        return run_parts(self.client, parts, func, *args, what=what)


@contextmanager
def backend(ctx: StageContext) -> Iterator[Any]:
    """Where a stage's body runs: in process (``compute=local``), on the run's Dask cluster,
    or on the executors of a Spark session (``compute=spark``, see ``stages.spark``)."""
    if ctx.params.get_path("compute.backend") == "spark":
        from pipespec.stages.spark import Spark, session

        with session(ctx.compute, ctx.root) as spark:
            yield Spark(spark)
        return
    if not ctx.dask:
        yield Local()
        return
    with connect(ctx) as client:
        yield Dask(client)


def run_parts(
    client: Client, parts: Sequence[Any], func: Callable[..., Any], *args: Any, what: str
) -> list[Any]:
    """``func(index, part, *args)`` for every partition on the cluster, with a progress bar;
    the results in partition order. A part is a file path or a Dask Delayed partition."""
    import dask
    from distributed import as_completed

    tasks = [dask.delayed(func, pure=False)(i, part, *args) for i, part in enumerate(parts)]
    futures = client.compute(tasks)
    with progress(what, len(futures)) as bar:
        try:
            for future in as_completed(futures):
                if future.status == "error":
                    future.result()  # raises the partition's exception here
                bar.advance()
        except BaseException:
            client.cancel(futures)
            raise
    return list(client.gather(futures))
