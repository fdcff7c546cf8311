"""The warm stage runner: one process with the stage kinds' libraries imported, that
``pipespec run`` starts for the length of its ``dvc repro``; each ``pipespec stage NAME`` that
DVC starts hands its work to it, and the runner forks a child that runs the stage.

Why (docs/architecture.md, "Warm stage runner"): every DVC stage is a new process, and on a
small table a stage spends more time importing pandas, pyarrow and LightGBM (which imports
scikit-learn) than working. A fork starts with all of that imported.

The contract it keeps:

- Same results. The child adopts the stage process's working directory, environment and
  stdin/stdout/stderr (their file descriptors travel over the socket), starts from the
  runner's state right after its imports (the runner never runs a stage itself, so no cache
  holds a project's values), reseeds the global random generators as a fresh process would
  draw them, and starts no thread before the fork. The runner refuses a stage whose
  environment differs from its own other than in what DVC and ``pipespec run`` set (PATH,
  ``DVC_*``): the libraries it imported read theirs (``OMP_*``, ``PYTHON*``) at import.
- Interrupts. A SIGTERM or SIGINT to the stage process is passed on to the child, which
  removes its temp files as an in-process stage does (``stage_process._terminate_cleanly``);
  a stage process that disappears gets its child terminated.
- Fallback. No runner (plain ``dvc repro``, ``pipespec stage`` by hand), a runner that
  refuses or is dead: the stage runs in its own process as before. A runner that dies while
  a child runs: the child is terminated and the stage runs in-process from the start.

Only the standard library is imported here, so handing a stage over costs an interpreter's
start-up and this module; what only ``pipespec run``'s side needs (``subprocess``, ``secrets``:
about 25 ms) is imported there, not by every stage process.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `pipespec run`'s side only: every stage process imports this module
    import subprocess

ENV_SOCKET = "PIPESPEC_RUNNER"
STAGE, CHECK = "stage", "check"  # the jobs: a stage, or the configs stage's freshness check
WAKEUP = "wakeup"  # the selector's key for the runner's signal wake-up pipe
PR_SET_NAME = 15  # prctl(2): a process's name
ENV_TOKEN = "PIPESPEC_RUNNER_TOKEN"
SOCKET_NAME = "runner.sock"
# what may differ between the runner's environment and a stage's: DVC and `pipespec run`
# set these; nothing the runner imported reads them at import
ENV_ALLOWED = (
    *("PATH", "PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES"),
    "PIPESPEC_TABLE_HASHES",  # stages.parquet.HASHES_ENV: read when a table is written
)
ENV_ALLOWED_PREFIXES = ("DVC_",)
# imported once by the runner: what the built-in stage kinds import, in the order the stages
# need them (`module:function` is also called, with no arguments, once imported). A request
# waits while one module is imported, so LightGBM's import (2 s, 1.3 of it scipy.stats
# through scikit-learn) comes in pieces after what the early stages need
WARM_MODULES = (
    "pipespec.engine.generate",  # the first stage's (configs) check
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "pyarrow.compute",
    "yaml",
    "rich.console",
    "rich._emoji_codes",  # rich's emoji table, read by every stage's first markup print
    "pipespec.engine.stage_process",
    "pipespec.stages.kinds:builtin_kinds",  # called: the kinds' declarations read once
    "pipespec.stages.load",
    "pipespec.stages.embedded",
    "pipespec.bundle.reader",
    "pipespec.stages.validate",
    "pipespec.stages.split",
    "pipespec.stages.featurize",
    "scipy.sparse",
    "scipy.linalg",
    "scipy.special",
    "scipy.fft",
    "scipy.spatial",
    "scipy.optimize",
    "scipy.interpolate",
    "scipy.ndimage",
    "scipy.stats",
    "sklearn",
    "sklearn.model_selection",
    "lightgbm",
    "pipespec.stages.train",
    "pipespec.stages.package",
    "pipespec.stages.evaluate",
    "pipespec.stages.behavior",
    "pipespec.stages.gate",
    "pipespec.bundle.bundle",
    "pipespec.bundle.assemble",
    "pipespec.bundle.behavior",
    "pipespec.bundle.profile",
)
_HEADER = struct.Struct("!I")
_MAX_REQUEST = 1 << 20


# --- the stage process's side ------------------------------------------------------------


def delegate(args: Sequence[str]) -> int | None:
    """``pipespec ARGS`` (``stage NAME``, or the configs stage's ``compose --check --stamp
    PATH``) run by the runner named by ``PIPESPEC_RUNNER``; its exit code, or None when
    ARGS is no job of the runner's or there is no runner to hand it to (the caller then
    runs it in-process)."""
    job = _job(args)
    return None if job is None else _hand_over(*job)


def run_command(cmd: str, env: Mapping[str, str], cwd: str) -> int | None:
    """A command of ``dvc.yaml`` that DVC is about to start for ``pipespec run``
    (``pipespec stage NAME``, the configs check), handed to the runner from ``pipespec run``'s
    own process instead: no shell and no ``pipespec`` process per stage. The child gets what
    the command would have had (DVC's environment for it, the stage's folder, this process's
    stdin/stdout/stderr). Its exit code, or None: another command, no runner, a refusal, or
    not the main thread (which alone can pass signals on); DVC then starts the command."""
    import shlex
    import threading

    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    job = _job(words[1:]) if words[:1] == ["pipespec"] else None
    if job is None or threading.current_thread() is not threading.main_thread():
        return None
    return _hand_over(*job, env=dict(env), cwd=cwd, argv=words)


def _job(args: Sequence[str]) -> tuple[str, str] | None:
    """The runner's job for ``pipespec ARGS``: (STAGE, name), (CHECK, ""), or None."""
    if len(args) == 2 and args[0] == "stage" and not args[1].startswith("-"):
        return STAGE, args[1]
    if len(args) == 4 and list(args[:3]) == ["compose", "--check", "--stamp"]:
        return CHECK, ""
    return None


def _hand_over(
    job: str,
    name: str,
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    argv: list[str] | None = None,
) -> int | None:
    env = dict(os.environ) if env is None else env
    path, token = env.get(ENV_SOCKET), env.get(ENV_TOKEN)
    if not path or not token:
        return None
    try:
        conn = _connect(path)
    except OSError:
        return None  # absent or dead
    with conn:
        request = json.dumps(
            {
                "token": token,
                "job": job,
                "stage": name,
                "cwd": os.getcwd() if cwd is None else cwd,
                "env": env,
                "path": sys.path,
                "argv": sys.argv if argv is None else argv,
            }
        ).encode()
        try:
            socket.send_fds(conn, [_HEADER.pack(len(request))], [0, 1, 2])
            conn.sendall(request)
            reader = conn.makefile("rb")
            first = _message(reader)
        except OSError:
            return None
        if first is None or "pid" not in first:
            return None  # refused, or died before forking
        child = int(first["pid"])
        forward = _forwarding(child)
        try:
            last = _message(reader)
        except OSError:
            last = None
        finally:
            _restore(forward)
    if last is None or "exit" not in last:  # the runner died under the child
        _terminate(child)
        return None
    return int(last["exit"])


def _connect(path: str) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(_short(path))
    except OSError:
        conn.close()
        raise
    return conn


def _short(path: str) -> str:
    """A socket path short enough for sun_path (108 bytes): relative when that is shorter."""
    if len(path.encode()) < 100:
        return path
    return os.path.relpath(path)


def _message(reader: Any) -> dict[str, Any] | None:
    line = reader.readline(_MAX_REQUEST)
    if not line:
        return None
    data = json.loads(line)
    return data if isinstance(data, dict) else None


def _forwarding(child: int) -> dict[int, Any]:
    """Pass SIGTERM and SIGINT on to the child while it runs."""

    def handler(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(child, signum)

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _terminate(pid: int, wait: float = 30.0) -> None:
    """SIGTERM a process that is not our child, and wait until it is gone."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


# --- `pipespec run`'s side ----------------------------------------------------------------


@contextlib.contextmanager
def warm_runner(state_dir: Path) -> Iterator[subprocess.Popen[bytes] | None]:
    """A runner for the duration, named to the stage processes in the environment (its
    process, or None when an outer run's runner serves this one too)."""
    import secrets
    import subprocess

    if ENV_SOCKET in os.environ:
        yield None
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir.resolve() / SOCKET_NAME
    path.unlink(missing_ok=True)
    token = secrets.token_hex(16)
    env = {**os.environ, ENV_SOCKET: str(path), ENV_TOKEN: token}
    # bound here, so a stage that starts before the runner is ready waits in the backlog
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)  # the socket: this user only
    try:
        listener.bind(_short(str(path)))
    finally:
        os.umask(old_umask)
    listener.listen(16)
    with listener:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipespec.engine.runner", str(path), str(listener.fileno())],
            env=env,
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            pass_fds=[listener.fileno()],
            start_new_session=True,  # the terminal's Ctrl-C reaches the stages through DVC
        )
    os.environ[ENV_SOCKET], os.environ[ENV_TOKEN] = str(path), token
    try:
        yield proc
    finally:
        del os.environ[ENV_SOCKET], os.environ[ENV_TOKEN]
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        path.unlink(missing_ok=True)


# --- the runner ---------------------------------------------------------------------------


def serve(path: str, fd: int) -> None:
    """Accept on the listening socket ``fd`` (bound at ``path``) once the stage kinds'
    libraries are imported; fork a child per stage."""
    import importlib
    import selectors

    sys.path[0] = os.path.dirname(sys.executable)  # not the folder -m ran from
    token = os.environ[ENV_TOKEN]
    expected = _comparable(dict(os.environ))
    parent = os.getppid()
    listener = socket.socket(fileno=fd)
    pending = list(WARM_MODULES)  # imported one at a time between requests: a stage that
    # comes early does not wait for all of them, its child imports what is still missing
    running: dict[int, socket.socket] = {}  # child pid -> its stage process's connection
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    # a child's exit (SIGCHLD) or a SIGTERM wakes the select at once: its exit code goes to
    # its stage process without waiting for the select's timeout
    wakeup, woken = os.pipe()
    for end in (wakeup, woken):
        os.set_blocking(end, False)
    signal.set_wakeup_fd(woken, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    selector.register(wakeup, selectors.EVENT_READ, WAKEUP)
    try:
        while not stopping and os.getppid() == parent:
            for key, _ in selector.select(timeout=0 if pending else 0.05):
                if key.fileobj is listener:
                    pid, conn = _accept(listener, token, expected, (wakeup, woken))
                    if pid:
                        running[pid] = conn
                        selector.register(conn, selectors.EVENT_READ, pid)
                elif key.data == WAKEUP:
                    with contextlib.suppress(OSError):
                        os.read(wakeup, 4096)
                else:  # the stage process closed its end: it is gone, stop its child
                    with contextlib.suppress(OSError):
                        os.kill(key.data, signal.SIGTERM)
                    selector.unregister(key.fileobj)
            _reap(running, selector)
            if pending:
                with contextlib.suppress(Exception):  # an optional one missing: the child
                    module, _, call = pending.pop(0).partition(":")  # imports it, or says so
                    loaded = importlib.import_module(module)
                    if call:
                        getattr(loaded, call)()
    finally:
        for pid in running:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while running and time.monotonic() < deadline:
            _reap(running, selector)
            time.sleep(0.05)
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def _comparable(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in env.items()
        if k not in ENV_ALLOWED and not k.startswith(ENV_ALLOWED_PREFIXES)
    }


def _accept(
    listener: socket.socket, token: str, expected: dict[str, str], own: tuple[int, ...] = ()
) -> tuple[int, socket.socket]:
    """Read one request; fork its child, or refuse it. (pid, connection) or (0, closed)."""
    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        conn.settimeout(10)
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        if len(header) != _HEADER.size or len(fds) != 3:
            raise ValueError("short request")
        (size,) = _HEADER.unpack(header)
        if size > _MAX_REQUEST:
            raise ValueError("request too large")
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise ValueError("short request")
            body += chunk
        request = json.loads(body)
        if request.get("token") != token:
            raise ValueError("wrong token")
        env = request["env"]
        theirs = _comparable(env)
        if theirs != expected:
            keys = sorted(k for k in {*theirs, *expected} if theirs.get(k) != expected.get(k))
            raise ValueError(f"the environment differs from the runner's in {', '.join(keys)}")
        if _import_path(request["path"], request["cwd"]) != _import_path(sys.path, request["cwd"]):
            raise ValueError("sys.path differs from the runner's")
        if request["job"] not in (STAGE, CHECK) or not isinstance(request["stage"], str):
            raise ValueError("unknown job")
        conn.settimeout(None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"refused": str(exc)}).encode() + b"\n")
        conn.close()
        for fd in fds:
            os.close(fd)
        return 0, conn
    sys.stdout.flush()
    sys.stderr.flush()
    pid = _fork()
    if pid == 0:  # the child: never returns
        listener.close()
        conn.close()
        signal.set_wakeup_fd(-1)
        for fd in own:  # the runner's wake-up pipe
            os.close(fd)
        sys.path[:], sys.argv[:] = request["path"], request["argv"]
        _child(request["job"], request["stage"], request["cwd"], env, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    return pid, conn


def _fork() -> int:
    """``os.fork()`` with the runner's objects (the imported libraries') frozen first, as
    ``gc`` advises before a fork: the child's first full collection would otherwise walk
    them all and write to every page that holds one (copy-on-write), 0.2 s of the child's
    CPU before its stage began (a 1M-row package stage, whose first collection comes while
    ``params.yaml`` is read)."""
    gc.freeze()
    return os.fork()


def _import_path(path: list[str], project: str) -> list[str]:
    """``sys.path`` as it decides what an import finds: without its first entry (the
    script's folder) and the project's folder (``load_pipeline`` puts it first, for a user's
    own kinds, in ``pipespec run``'s process and in every stage process)."""
    return [p for p in path if p != project][1:]


def _reap(running: dict[int, socket.socket], selector: Any) -> None:
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        conn = running.pop(pid, None)
        if conn is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"exit": code if code >= 0 else 128 - code}).encode() + b"\n")
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(conn)
        conn.close()


def _child(job: str, stage: str, cwd: str, env: dict[str, str], fds: list[int]) -> None:
    """Become the stage process: its descriptors, directory and environment, fresh seeds."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.setpgid(0, 0)  # not in the runner's group: a signal to the runner spares it
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)  # as run_stage's own handler does
        _name_process(stage if job == STAGE else "configs")
        _reseed()
        code = run_in_process(stage) if job == STAGE else check_in_process()
    except KeyboardInterrupt:  # before the stage began: nothing written
        sys.stderr.write("error: interrupted\n")
        code = 130
    except BaseException:  # the exit code says it failed; nothing escapes
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _name_process(stage: str) -> None:
    """The child's name in ``ps`` and ``/proc/PID/comm``: ``stage NAME`` (Linux only, cut at
    15 bytes), so a stage run by the runner can be told from the runner itself."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):  # a name is a convenience: never a failure
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_NAME, f"stage {stage}".encode()[:15], 0, 0, 0)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _reseed() -> None:
    """The global random generators drawn afresh, as a new process draws them."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        import numpy as np

        np.random.seed(int.from_bytes(os.urandom(4), "little"))


def run_in_process(stage: str) -> int:
    """``pipespec stage NAME`` without the runner: run it here; its exit code."""
    from pipespec.engine.project import Project
    from pipespec.engine.stage_process import run_stage

    return _in_process(lambda: run_stage(Project.find(None), stage))


def check_in_process() -> int:
    """``pipespec compose --check --stamp`` (the ``configs`` stage) here; its exit code."""
    from pipespec.engine.generate import check_and_stamp
    from pipespec.engine.project import Project

    return _in_process(lambda: check_and_stamp(Project.find(None)))


def _in_process(work: Callable[[], object]) -> int:
    from pipespec.core import console as console_module
    from pipespec.core.errors import PipespecError

    console_module.console.cache_clear()  # bound to this process's stderr and environment
    console_module.out.cache_clear()
    try:
        work()
    except PipespecError as exc:
        console_module.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        console_module.error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
    # Its children are reaped and it holds no file to flush: skip the interpreter's
    # finalization of the imported libraries (about 0.8 s that `pipespec run` waits on).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
