"""``compute=spark``: a Spark session for the stage, and the backend that maps a stage's
body over its parts on the session's executors.

The body is the one the local and Dask backends run (``cluster.Local``, ``cluster.Dask``):
``func(index, part, *args)`` per part, here one Spark task per part through ``mapInArrow``
over a table of the part numbers. A part is a file path (the executors read and write the
project's files directly, so a cluster's workers must see the project's folder, as on Dask)
or a lazy partition of the dataset's source, read on the executor that cleans it. What
needs the whole table is reduced in the stage's process between two maps.

The results travel back as one binary column: the Python objects a body returns (counts,
row hashes, validation failures), in Spark's own serialisation of Python objects, the one
it ships the body with. Nothing of it is written to a file. An error raised by a body is
raised again in the stage, with its own type and message.

pyspark is an optional extra (``pipespec[spark]``); only this module, ``spark_table`` and
``train_spark`` import it (an import-linter contract).
"""

from __future__ import annotations

import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import console
from pipespec.core.errors import ConfigError, PipespecError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXTRA = "pipespec[spark]"
SCHEMA = "index long, ok boolean, result binary"
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# pyspark warns that pandas >= 3 is "not yet fully supported"; mapInArrow does not use pandas
PANDAS_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"


def require() -> None:
    """Refuse ``compute=spark`` (or ``dataset.source=spark``) without pyspark."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(
            "compute=spark (or dataset.source=spark) needs pyspark, which is not installed",
            hint=f"Install the extra: pip install '{EXTRA}'.",
        ) from None


def _answers(master: str, timeout: float = 3.0) -> None:
    """Fail fast when a standalone master does not accept connections (Spark itself would
    retry for minutes). ``local[N]`` runs in the stage; yarn and k8s:// are passed through."""
    if not master.startswith("spark://"):
        return
    for location in master.removeprefix("spark://").split(","):
        host, _, port = location.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
            return
        except OSError:
            continue
    raise ConfigError(
        f"cannot reach the Spark master at {master} (compute.master): nothing accepts "
        "connections there",
        hint="Start the master, or fix compute.master (local[N] runs Spark in the stage).",
    )


def _source_dir() -> str:
    """The folder the running pipespec is imported from: the executors' Python imports the
    same code (an editable checkout or a worktree, not some other installed copy)."""
    import pipespec

    return str(Path(pipespec.__file__).resolve().parent.parent)


@contextmanager
def session(
    compute: dict[str, Any], root: Path, catalog: dict[str, Any] | None = None
) -> Iterator[SparkSession]:
    """A Spark session sized by the ``compute`` group (its values were checked at
    composition), stopped at the end. ``catalog``: the dataset's ``warehouse`` and
    ``metastore`` (a local Hive metastore in Derby) when it reads a table."""
    require()
    from pyspark.sql import SparkSession

    spark_compute = compute.get("backend") == "spark"
    master = str(compute.get("master") or "local[1]") if spark_compute else "local[1]"
    _answers(master)
    executors = int(compute.get("executors") or 1) if spark_compute else 1
    cores = int(compute.get("executor_cores") or 1) if spark_compute else 1
    python = sys.executable  # the environment's own python, not a resolved symlink
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    if master.startswith(("local", "spark://127.", "spark://localhost")):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = python
    os.environ["PYSPARK_DRIVER_PYTHON"] = python
    scratch = root / ".pipespec" / "spark"
    scratch.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (_source_dir(), os.environ.get("PYTHONPATH")) if p)
    settings = {
        "spark.app.name": "pipespec",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": python,
        "spark.executorEnv.PYTHONPATH": path,
        "spark.executorEnv.PYSPARK_PYTHON": python,
        "spark.local.dir": str(scratch) if master.startswith("local") else "",
        "spark.executor.instances": str(executors),
        "spark.executor.cores": str(cores),
        "spark.cores.max": str(executors * cores),
        "spark.task.maxFailures": "1",  # a body's error is the stage's error, not retried
        "spark.sql.shuffle.partitions": str(max(1, executors * cores)),
        "spark.driver.host": "127.0.0.1" if master.startswith(("local", "spark://127.")) else "",
        "spark.sql.sources.partitionOverwriteMode": "static",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        # a JVM that starts fast (the session is the stage's, not a long-lived service)
        "spark.driver.extraJavaOptions": JVM_OPTIONS,
        "spark.executor.extraJavaOptions": JVM_OPTIONS,
        "spark.executorEnv.PYTHONWARNINGS": PANDAS_WARNING,
    }
    if spark_compute:
        settings["spark.executor.memory"] = str(compute.get("executor_memory") or "2g")
        settings["spark.driver.memory"] = str(compute.get("driver_memory") or "2g")
    builder = SparkSession.builder.master(master)
    for key, value in settings.items():
        if value:
            builder = builder.config(key, value)
    if catalog and catalog.get("warehouse"):
        builder = builder.config(
            "spark.sql.warehouse.dir", str(_inside(root, catalog["warehouse"]))
        )
    if catalog and catalog.get("metastore"):
        where = _inside(root, catalog["metastore"])
        derby = f"-Dderby.stream.error.file={scratch / 'derby.log'}"  # not the working folder
        builder = builder.config("spark.driver.extraJavaOptions", f"{JVM_OPTIONS} {derby}")
        builder = builder.config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={where};create=true",
        ).enableHiveSupport()
    clock = time.perf_counter()
    spark = builder.getOrCreate()
    try:
        spark.sparkContext.setLogLevel("ERROR")
        timeout = float(compute.get("start_timeout") or 300) if spark_compute else 300.0
        _wait_for_executors(spark, master, executors, timeout)
        console().print(
            f"  Spark session on {master} ({executors} executor(s)) in "
            f"{time.perf_counter() - clock:.0f}s"
        )
        yield spark
    finally:
        spark.stop()


def _inside(root: Path, value: str) -> Path:
    """A catalog folder named by the dataset config, relative to the project."""
    path = Path(value)
    return path if path.is_absolute() else root / path


def _wait_for_executors(spark: SparkSession, master: str, wanted: int, timeout: float) -> None:
    """A cluster's executors register after the session starts; the barrier stage of
    training needs all of them at once."""
    if master.startswith("local"):
        return
    status = spark.sparkContext._jsc.sc().getExecutorMemoryStatus()  # driver included
    deadline = time.monotonic() + timeout
    while status.size() - 1 < wanted:
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the Spark master at {master} (compute.master) gave {status.size() - 1} of "
                f"{wanted} executors (compute.executors) in {timeout:.0f}s "
                "(compute.start_timeout)",
                hint="Start more workers, or lower compute.executors or executor_memory.",
            )
        time.sleep(0.5)
        status = spark.sparkContext._jsc.sc().getExecutorMemoryStatus()


class Spark:
    """The Spark backend: the body runs on the session's executors, one task per part."""

    # The stages read this flag as "tables are partitioned": under Spark they are, as on
    # Dask (a directory of part files), and a partitioned source is read as Dask reads it.
    dask = True

    def __init__(self, spark: SparkSession) -> None:
        self.session = spark

    def map(
        self, parts: Sequence[Any], func: Callable[..., Any], *args: Any, what: str
    ) -> list[Any]:
        """``func(index, part, *args)`` for every part on the executors; the results in
        part order."""
        from pyspark.serializers import CloudPickleSerializer

        if not parts:
            return []
        clock = time.perf_counter()
        body = _Body(func, list(parts), args)
        numbers = self.session.range(0, len(parts), 1, numPartitions=len(parts))
        try:
            rows = numbers.mapInArrow(body, SCHEMA).collect()
        except Exception as exc:  # a failure of Spark itself (a body's error comes back as data)
            raise PipespecError(f"Spark failed while {what}: {_first_line(exc)}") from None
        serializer = CloudPickleSerializer()
        results: dict[int, Any] = {}
        for row in rows:
            value = serializer.loads(row["result"])
            if not row["ok"]:
                raise value
            results[int(row["index"])] = value
        console().print(f"  {what}: {len(parts)} Spark tasks in {time.perf_counter() - clock:.1f}s")
        return [results[i] for i in range(len(parts))]


class _Body:
    """What each Spark task runs: the stage's body on the parts whose numbers it gets."""

    def __init__(self, func: Callable[..., Any], parts: list[Any], args: tuple[Any, ...]) -> None:
        self.func, self.parts, self.args = func, parts, args

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa
        from pyspark.serializers import CloudPickleSerializer

        serializer = CloudPickleSerializer()
        for batch in batches:
            for index in batch.column(0).to_pylist():
                ok = True
                try:
                    result: Any = self.func(index, _resolved(self.parts[index]), *self.args)
                    data = serializer.dumps(result)
                except Exception as exc:
                    ok = False
                    data = _error(serializer, exc)
                yield pa.RecordBatch.from_pydict(
                    {"index": [index], "ok": [ok], "result": [data]},
                    schema=pa.schema(
                        [("index", pa.int64()), ("ok", pa.bool_()), ("result", pa.binary())]
                    ),
                )


def _resolved(part: Any) -> Any:
    """A lazy partition of the source (a Dask Delayed, alone or in a tuple such as load's
    ``(file key, partition)``) read here, on the executor."""
    from dask.delayed import Delayed

    if isinstance(part, tuple):
        return tuple(_resolved(item) for item in part)
    if isinstance(part, Delayed):
        return part.compute(scheduler="sync")
    return part


def _error(serializer: Any, exc: Exception) -> bytes:
    """The body's exception, to be raised again in the stage (as a PipespecError with its
    text when it cannot travel)."""
    try:
        data: bytes = serializer.dumps(exc)
        serializer.loads(data)
        return data
    except Exception:
        fallback: bytes = serializer.dumps(PipespecError(f"{type(exc).__name__}: {exc}"))
        return fallback


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- a standalone cluster on this machine (tests and bench/scale.py) --------------------


@contextmanager
def standalone(workers: int, scratch: Path, *, cores: int = 1, memory: str = "2g",
               timeout: float = 300.0) -> Iterator[str]:  # fmt: skip
    """A real standalone Spark cluster on 127.0.0.1: a master and ``workers`` workers as
    separate processes, started from the wheel's ``spark-class``; yields the master's URL
    once every worker has registered, and stops them all at the end."""
    import subprocess

    require()
    import pyspark

    home = Path(pyspark.__file__).parent
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(scratch),
           "SPARK_WORKER_DIR": str(scratch / "work")}  # fmt: skip
    port, ui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    launch = [str(home / "bin" / "spark-class")]
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        log = open(scratch / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen([*launch, *args], env=env, stdout=log, stderr=log))
        log.close()

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", str(ui))  # fmt: skip
        for i in range(workers):
            start(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", url, "--host",
                  "127.0.0.1", "--cores", str(cores), "--memory", memory, "--webui-port",
                  str(_free_port()))  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            log = (scratch / "master.log").read_text(errors="replace")
            alive = log.count("Registering worker")
            if alive >= workers:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise PipespecError(
                    f"the standalone Spark cluster did not come up ({alive} of {workers} "
                    f"workers in {timeout:.0f}s); logs in {scratch}"
                )
            time.sleep(1)
        yield url
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
