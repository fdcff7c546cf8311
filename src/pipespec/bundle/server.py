"""Running the HTTP service: the socket, uvicorn's settings, worker processes, signals and
the shadow bundle.

``serve`` takes plain arguments (a loaded bundle, an address, a number of workers, a shadow
bundle's folder), so the ``pipespec serve`` command only parses its options, calls it and
renders what it says. The app it runs is ``bundle.serve.create_app``; this module imports
that one, never the other way round (the app reads ``serve.TIMED_OUT``, which the deadline
below sets).

What a hostile or broken client can do is bounded here (``docs/architecture.md``, "Threat
model: requests and the server"):

- a request's head and body must arrive within ``Limits.request_timeout`` seconds of its
  first byte (or of the connection's opening): a slow client (slowloris) is disconnected,
  with a ``408`` when it has not sent a whole head yet. uvicorn has an idle keep-alive
  timeout but no such deadline, so it is added to uvicorn's own h11 protocol, which uvicorn
  takes as its ``http`` setting;
- an idle keep-alive connection is closed after ``Limits.keep_alive`` seconds, a head over
  ``Limits.max_header_bytes`` is refused (h11), and past ``Limits.max_connections`` open
  connections a worker answers ``503`` (uvicorn's ``limit_concurrency``);
- with several workers, the parent supervises them: a worker that dies is logged and
  replaced, workers exit when the parent dies (``PR_SET_PDEATHSIG``, or a watch on the
  parent's id), and prometheus-client's multiprocess directory is removed on exit.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.console import error
from pipespec.core.errors import BundleError, ConfigError, PipespecError

if TYPE_CHECKING:
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.serve import Observer

BACKLOG = 2048  # uvicorn's default
FAST_FAILURE = 5.0  # a worker that dies sooner than this after its start failed to start
FAST_FAILURES = 3  # this many in a row: stop, the workers cannot start


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the server."""

    request_timeout: float = 10.0  # seconds for a request's head and body to arrive
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    max_connections: int = 1000  # open connections per worker; beyond, 503
    max_header_bytes: int = 16 * 1024  # a request's head


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port and listening (connections queue until a worker
    accepts them); a ConfigError naming --host/--port if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for it, and
    # without it small responses wait ~40 ms for Nagle and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} (--host/--port): {exc.strerror or exc}",
            hint="Pick another port (--port 0 picks a free one), or stop what holds it.",
        ) from None
    return sock


def serve(
    bundle: Bundle,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log: str | os.PathLike[str] | None = None,
    access_log: bool = False,
    release: dict[str, Any] | None = None,
    shadow: str | os.PathLike[str] | None = None,
    shadow_log: str | os.PathLike[str] = "shadow.jsonl",
    limits: Limits = Limits(),
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve ``bundle`` until SIGTERM or SIGINT. ``on_ready(host, port)`` is called once
    the socket accepts connections and every worker answers them (``port`` is the one bound:
    ``port=0`` picks a free one). ``shadow``: the folder of a second bundle that scores every
    answered request in its own process, off the response path, both predictions going to
    ``shadow_log`` (one worker only); its backlog is finished before this returns."""
    if shadow is None:
        _serve(bundle, host, port, workers, log, access_log, release, None, limits, on_ready)
        return
    if workers > 1:
        raise ConfigError("--shadow works with one worker process: drop --workers")
    from pipespec.bundle.shadow import Shadow

    shadowing = Shadow(Path(shadow), shadow_log, primary=bundle.sha)
    try:
        _serve(bundle, host, port, 1, log, access_log, release, shadowing.submit, limits, on_ready)
    finally:
        shadowing.close()
        if shadowing.dropped:
            error(
                f"shadow: {shadowing.dropped:,} requests were not scored (the shadow fell behind)"
            )


def _serve(
    bundle: Bundle,
    host: str,
    port: int,
    workers: int,
    log: str | os.PathLike[str] | None,
    access_log: bool,
    release: dict[str, Any] | None,
    observer: Observer | None,
    limits: Limits,
    on_ready: Callable[[str, int], None] | None,
) -> None:
    from pipespec.bundle.prometheus import MULTIPROC_ENV

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: exit through
    # Python so the callers' contexts (the shadow's backlog, a fetched bundle's temporary
    # directory) are closed, instead of dying on the default handler.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if workers == 1:
        sock = listen(host, port)
        announce = (lambda: on_ready(*sock.getsockname()[:2])) if on_ready else None
        _server(bundle, log, access_log, release, observer, limits, announce).run(sockets=[sock])
        return
    import shutil
    import tempfile

    # prometheus-client's multiprocess mode: set before it is first imported, so every
    # worker writes its counts where /metrics (in any worker) adds them up
    metrics_dir = tempfile.mkdtemp(prefix="pipespec-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        sock = listen(host, port)
        # the serving modules once, in the parent, before the forks (not the model: LightGBM's
        # OpenMP threads do not survive a fork, so each worker loads and warms it up)
        import multiprocessing

        import uvicorn  # noqa: F401

        import pipespec.bundle.serve  # noqa: F401

        readiness, ready_end = multiprocessing.get_context("fork").Pipe(duplex=False)
        start = _Worker(bundle, sock, log, access_log, release, limits, metrics_dir, ready_end)
        _supervise(
            start,
            workers,
            readiness,
            lambda: on_ready(*sock.getsockname()[:2]) if on_ready else None,
        )
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _server(
    bundle: Bundle,
    log: Any,
    access_log: bool,
    release: Any,
    observer: Any,
    limits: Limits,
    ready: Callable[[], None] | None = None,
) -> Any:
    """A uvicorn server for the app (the model is loaded and warmed up here); ``ready`` is
    called once it accepts connections."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and ready is not None:
                ready()

    from pipespec.bundle.serve import create_app

    app = create_app(bundle, log=log, release=release, observer=observer)
    # Everything loaded so far (the libraries, the bundle, the warmed-up model) lives as
    # long as the server: out of the collector's sight, a collection no longer walks it.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]  # a float works
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        http=_protocol(limits.request_timeout),
        lifespan="on",
    )
    return Server(config)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


# --- the request deadline -----------------------------------------------------------------

_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 46\r\n\r\n"
    b"the request did not arrive within the timeout\n"
)


class _Shed:
    """Counts connections closed for slowness, and logs them at most once per 10 s."""

    def __init__(self) -> None:
        self.count = 0
        self.logged = 0.0

    def note(self, timeout: float) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged >= 10.0:
            error(
                f"closed {self.count:,} connection(s) that sent no whole request within "
                f"{timeout:g} s"
            )
            self.count, self.logged = 0, now


def _protocol(timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline on each request's head and body."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from pipespec.bundle.serve import TIMED_OUT

    shed = _Shed()

    class DeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._deadline is None:  # a new request starts on a kept-alive connection
                self._arm()
            super().data_received(data)
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self._disarm()  # the whole request is in (or the connection is over)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            shed.note(timeout)
            if self.conn.their_state is h11.SEND_BODY and self.cycle is not None:
                # the app is reading the body: it sees a disconnect, and answers nothing
                self.scope["state"][TIMED_OUT] = True
            elif self.conn.our_state is h11.IDLE:
                self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    return DeadlineProtocol


# --- worker processes ---------------------------------------------------------------------


@dataclass
class _Worker:
    """What a worker process needs; calling it starts one (forked: the bundle is shared)."""

    bundle: Bundle
    sock: socket.socket
    log: Any
    access_log: bool
    release: Any
    limits: Limits
    metrics_dir: str
    ready: Any  # the sending end of the parent's readiness pipe

    def __call__(self) -> Any:
        import multiprocessing

        proc = multiprocessing.get_context("fork").Process(
            target=self.run, args=(os.getpid(),), daemon=True
        )
        proc.start()
        return proc

    def run(self, parent: int) -> None:
        """In the worker: serve on the shared socket until told to stop or the parent dies."""
        import shutil

        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        _die_with(parent)
        try:
            server = _server(
                self.bundle,
                self.log,
                self.access_log,
                self.release,
                None,
                self.limits,
                lambda: self.ready.send(os.getpid()),
            )
            server.run(sockets=[self.sock])
        except (PipespecError, OSError) as exc:  # one line, as the parent would say it
            error(f"worker {os.getpid()}: {exc}")
            raise SystemExit(getattr(exc, "exit_code", 1)) from None
        finally:
            if os.getppid() != parent:  # orphaned: nobody else will remove the metrics
                shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _die_with(parent: int) -> None:
    """Have this process receive SIGTERM when ``parent`` dies: Linux's PR_SET_PDEATHSIG,
    elsewhere a thread that watches the parent's id."""
    armed = False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(1, int(signal.SIGTERM), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if not armed:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # it died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


def _exit_story(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _supervise(
    start: Callable[[], Any], workers: int, readiness: Any, ready: Callable[[], None]
) -> None:
    """Start ``workers`` processes and keep that many running until SIGTERM or SIGINT; then
    stop them all. ``ready()`` is called once every first worker has said (on the
    ``readiness`` pipe) that it accepts connections."""
    from multiprocessing.connection import wait

    procs: dict[Any, tuple[Any, float]] = {}

    def launch() -> None:
        proc = start()
        procs[proc.sentinel] = (proc, time.monotonic())

    failures = 0
    try:
        for _ in range(workers):
            launch()
        answering: set[int] = set()
        pipe: Any = readiness  # (not narrowed by the test below)
        while True:
            for sentinel in wait([readiness, *procs]):
                if sentinel is readiness:
                    answering.add(int(pipe.recv()))
                    if len(answering) == workers:
                        ready()  # once: restarted workers add more pids
                    continue
                proc, started = procs.pop(sentinel)
                proc.join()
                failures = failures + 1 if time.monotonic() - started < FAST_FAILURE else 0
                if failures >= FAST_FAILURES:
                    raise BundleError(
                        f"worker processes keep exiting at start (the last, {proc.pid}, "
                        f"{_exit_story(proc.exitcode)}); stopped",
                        hint="Run with --workers 1 to see why the server does not start.",
                    )
                error(f"worker {proc.pid} {_exit_story(proc.exitcode)}; starting another")
                launch()
    finally:
        for proc, _ in procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc, _ in procs.values():
            proc.join(timeout=15)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
