"""``compute=dask``: the cluster a stage runs on, and tables as directories of Parquet parts.

A stage connects to ``compute.address``, or to the cluster that ``pipespec run`` started for
the whole run (its address is in ``PIPESPEC_DASK_ADDRESS``), or else starts a ``LocalCluster``
of its own (plain ``dvc repro``). Workers read and write the project's files directly, so an
external cluster's workers must see the project's folder (a shared filesystem).

A table written under Dask is a directory of ``part.NNNNN.parquet`` files, one per partition,
each carrying the same pipespec metadata as a single-file table; readers here and
``parquet.read_table`` accept both forms. Outputs are written into temporary directories next
to their targets and moved into place together when every partition has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.documents import TableMeta
from pipespec.core.errors import ConfigError, DataError
from pipespec.stages.parquet import schema_meta, write_table

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    from pipespec.stages.context import StageContext

ENV_ADDRESS = "PIPESPEC_DASK_ADDRESS"  # set by `pipespec run`: one cluster for all its stages
PART = "part.{:05d}.parquet"


# --- the cluster -----------------------------------------------------------------------


def local_cluster(compute: dict[str, Any], root: Path) -> LocalCluster:
    """A LocalCluster sized by the ``compute`` group (worker processes, threads, memory)."""
    from distributed import Client, LocalCluster

    def positive(key: str) -> int:
        value = compute.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"compute.{key} must be a whole number >= 1, got {value!r}")
        return value

    workers, threads = positive("workers"), positive("threads_per_worker")
    memory = compute.get("memory_limit") or "auto"
    try:
        from dask.utils import parse_bytes

        if memory != "auto":
            parse_bytes(str(memory))
    except ValueError:
        raise ConfigError(
            f"compute.memory_limit: '{memory}' is not a size (e.g. 4GiB, 500MB or auto)"
        ) from None
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


# --- tables as directories of parts ----------------------------------------------------


def part_files(path: Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or a directory's parts in order."""
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise DataError(f"no Parquet files in {path}")
        return files
    if not path.exists():
        raise DataError(f"input file not found: {path}")
    return [path]


def table_meta(path: Path) -> TableMeta:
    """The pipespec metadata of a table written by a stage ({} if none)."""
    import pyarrow.parquet as pq

    return schema_meta(pq.read_schema(part_files(path)[0]))


def column_names(path: Path) -> list[str]:
    """A Parquet file's column names, from its footer (no data read)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def part_rows(files: Sequence[Path]) -> list[int]:
    """Rows per file, from the Parquet footers (no data read)."""
    import pyarrow.parquet as pq

    return [pq.ParquetFile(f).metadata.num_rows for f in files]


def read_part(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pandas()


def frame(path: Path, columns: list[str] | None = None) -> dd.DataFrame:
    """A stage's table as a Dask DataFrame, one partition per part file."""
    import dask.dataframe as dd

    files = part_files(path)
    return dd.read_parquet([str(f) for f in files], columns=columns, split_row_groups=False)


class Parts:
    """Output tables written partition by partition into temporary directories; ``commit``
    moves them into place together, leaving a run that failed halfway no partial output."""

    def __init__(self, outputs: dict[str, Path]) -> None:
        self.targets = dict(outputs)
        token = uuid.uuid4().hex[:8]
        self.temps = {n: p.parent / f".{p.name}.{token}.tmp" for n, p in outputs.items()}
        for temp in self.temps.values():
            temp.mkdir(parents=True)

    def write(self, name: str, index: int, table: pd.DataFrame, meta: TableMeta) -> None:
        """Write partition ``index`` of output ``name`` (run on a worker)."""
        write_table(table, self.temps[name] / PART.format(index), meta)

    def commit(self) -> None:
        for name, temp in self.temps.items():
            target = self.targets[name]
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(temp, target)

    def discard(self) -> None:
        for temp in self.temps.values():
            shutil.rmtree(temp, ignore_errors=True)

    def __enter__(self) -> Parts:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def run_parts(
    client: Client, parts: Sequence[Any], func: Callable[..., Any], *args: Any, what: str
) -> list[Any]:
    """``func(index, part, *args)`` for every partition on the cluster, with a progress bar;
    the results in partition order. A part is a file path or a Dask Delayed partition."""
    import dask
    from distributed import as_completed
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    tasks = [dask.delayed(func, pure=False)(i, part, *args) for i, part in enumerate(parts)]
    futures = client.compute(tasks)
    with Progress(
        TextColumn(f"  {what}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=len(futures))
        try:
            for future in as_completed(futures):
                if future.status == "error":
                    future.result()  # raises the partition's exception here
                bar.advance(task)
        except BaseException:
            client.cancel(futures)
            raise
    return list(client.gather(futures))


def offsets(counts: Sequence[int]) -> list[int]:
    """The first global row number of each partition."""
    out, total = [], 0
    for n in counts:
        out.append(total)
        total += n
    return out
