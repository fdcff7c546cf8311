"""`pipespec serve` against hostile clients and its own faults, on a real uvicorn on 127.0.0.1
with real sockets and real signals: slow clients (slowloris) are shed within the request
timeout while /health answers, idle keep-alive connections are closed, past the connection
cap a worker answers 503, a client that hangs up mid-body is counted as 499 (not 5xx) in one
log line, a SIGKILLed worker is replaced, killing the parent frees the port and removes the
metrics directory. (That "serving on ..." is printed only once the socket accepts and the
workers answer is checked by every server start: ``bundle_helpers.start_server``.)"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bundle_helpers import Server, start_server
from test_prometheus import scrape, value

pytestmark = pytest.mark.slow

TIMEOUT = 4.0  # --request-timeout of the guarded server
CAP = 250  # --max-connections


@pytest.fixture(scope="module")
def guarded(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with short limits for the whole module."""
    server = start_server(
        bundle_dir,
        tmp_path_factory.mktemp("guarded"),
        "--request-timeout", str(TIMEOUT), "--keep-alive", "1", "--max-connections", str(CAP),
    )  # fmt: skip
    yield server
    server.stop()


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def post_head(length: int) -> bytes:
    return (
        "POST /predict HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        f"content-length: {length}\r\n\r\n"
    ).encode()


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closes ``sock`` within ``seconds``, and what it sent first."""
    sock.settimeout(seconds)
    got = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                return True, got
            got += chunk
    except TimeoutError:
        return False, got
    except ConnectionResetError:
        return True, got
    return False, got


def test_a_slowloris_is_shed_within_the_timeout_while_health_answers(guarded: Server) -> None:
    host, port = address(guarded)
    request = post_head(40) + b'{"age": 40}'
    socks = []
    for _ in range(200):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(request[:1])
        sock.setblocking(False)
        socks.append(sock)
    opened = time.monotonic()
    open_ = {s.fileno(): s for s in socks}
    answers: dict[int, bytes] = {}
    sent = 1
    health: list[float] = []
    closed_at: list[float] = []
    last_byte = opened
    while open_ and time.monotonic() - opened < TIMEOUT + 6:
        started = time.monotonic()
        assert httpx.get(f"{guarded.url}/health", timeout=5).status_code == 200
        health.append(time.monotonic() - started)
        if time.monotonic() - last_byte >= 2.0:  # the next byte of each request, every 2 s
            for _fd, sock in list(open_.items()):
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.send(request[sent : sent + 1])
            sent += 1
            last_byte = time.monotonic()
        readable, _, _ = select.select(list(open_.values()), [], [], 0.2)
        for sock in readable:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                answers[sock.fileno()] = answers.get(sock.fileno(), b"") + chunk
            else:
                closed_at.append(time.monotonic() - opened)
                del open_[sock.fileno()]
    for sock in socks:
        sock.close()
    assert not open_, f"{len(open_)} of 200 slow connections still open after {TIMEOUT + 6} s"
    assert min(closed_at) >= TIMEOUT - 1.0  # shed by the request timeout, not before
    assert max(closed_at) <= TIMEOUT + 3.0
    assert max(health) < 1.0, health  # /health stayed fast throughout
    assert len(answers) == 200
    assert all(a.startswith(b"HTTP/1.1 408 Request Timeout") for a in answers.values())
    assert "connection(s) that sent no whole request within 4 s" in guarded.stderr()
    assert guarded.client.get("/health").status_code == 200


def test_a_slow_body_is_cut_off_and_counted_as_408(guarded: Server) -> None:
    before = scrape(guarded)
    with socket.create_connection(address(guarded), timeout=5) as sock:
        sock.sendall(post_head(100) + b'{"age": ')
        closed, answer = closed_within(sock, TIMEOUT + 3)
    assert closed
    assert answer == b""  # the body was under way: no answer, just the cut
    after = _until(guarded, lambda s: _delta(before, s, "408") == 1)
    assert _delta(before, after, "500") == 0
    log = guarded.stderr()
    assert re.search(r"POST /predict: 127\.0\.0\.1:\d+ was too slow: cut off before its", log)
    assert "Traceback" not in log


def test_a_client_hanging_up_mid_body_is_499_in_one_line(guarded: Server) -> None:
    before = scrape(guarded)
    lines_before = guarded.stderr().count("hung up")
    for _ in range(3):
        with socket.create_connection(address(guarded), timeout=5) as sock:
            sock.sendall(post_head(1000) + b'{"age": 4')
            time.sleep(0.2)
    after = _until(guarded, lambda s: _delta(before, s, "499") == 3)
    assert _delta(before, after, "500") == 0
    assert _delta(before, after, "200") == 0
    log = guarded.stderr()
    assert log.count("hung up") - lines_before == 3
    assert re.search(
        r"POST /predict: 127\.0\.0\.1:\d+ hung up before its request body was complete; "
        "not answered",
        log,
    )
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log


def test_an_idle_keep_alive_connection_is_closed(guarded: Server) -> None:
    with socket.create_connection(address(guarded), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
        closed, answer = closed_within(sock, 5)  # the answer, then the close
    assert closed
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"}")  # the whole answer came
    assert time.monotonic() - started < 3.5  # --keep-alive 1


def test_past_the_connection_cap_a_worker_answers_503(guarded: Server) -> None:
    host, port = address(guarded)
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(CAP)]
    try:
        time.sleep(0.3)
        assert httpx.get(f"{guarded.url}/health", timeout=5).status_code == 503
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while httpx.get(f"{guarded.url}/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "still 503 after the idle connections closed"
        time.sleep(0.1)


def _delta(before: dict, after: dict, status: str) -> float:
    name, endpoint = "pipespec_requests_total", "/predict"
    return value(after, name, endpoint=endpoint, status=status) - value(
        before, name, endpoint=endpoint, status=status
    )


def _until(server: Server, ok: object, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        samples = scrape(server)
        if ok(samples) or time.monotonic() > deadline:  # type: ignore[operator]
            return samples
        time.sleep(0.1)


# --- worker processes -------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux's /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text if _alive(int(c))]
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


def _wait(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_killed_worker_comes_back_and_killing_the_parent_frees_the_port(
    bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # where the server makes its metrics directory
    server = start_server(bundle_dir, tmp_path, "--workers", "2")
    try:
        workers = children(server.proc.pid)
        assert len(workers) == 2
        assert len(list(temp.glob("pipespec-metrics-*"))) == 1
        assert httpx.post(f"{server.url}/predict", json=[{}]).status_code == 422
        os.kill(workers[0], signal.SIGKILL)
        _wait(
            lambda: (
                f"worker {workers[0]} was killed by SIGKILL; starting another" in server.stderr()
            ),
            15,
            f"no restart logged:\n{server.stderr()}",
        )
        _wait(lambda: len(children(server.proc.pid)) == 2, 15, "the worker did not come back")
        replaced = children(server.proc.pid)
        assert workers[0] not in replaced
        assert workers[1] in replaced
        # every answer is right whichever worker gives it; counts survive the dead worker
        deadline = time.monotonic() + 30
        while True:
            with httpx.Client(base_url=server.url) as fresh:  # a new connection each time
                samples = scrape(Server(server.proc, server.url, server.log, client=fresh))
            if value(samples, "pipespec_requests_total", endpoint="/metrics") >= 4:
                break
            assert time.monotonic() < deadline
        assert value(samples, "pipespec_requests_total", endpoint="/predict", status="422") == 1

        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        _wait(lambda: not any(_alive(w) for w in replaced), 20, "the workers outlived the parent")
        with socket.socket() as sock:
            # as `pipespec serve` binds (SO_REUSEADDR): a restart must find no listener left;
            # connections the dead workers closed may sit in TIME_WAIT, which a plain bind
            # would also refuse
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))  # the port is free again
            sock.listen()
        _wait(
            lambda: not list(temp.glob("pipespec-metrics-*")),
            10,
            "the metrics directory was left behind",
        )
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()
