"""HTTP prediction on loopback: single-record latency (p50, p99) and requests/s at
concurrency 8 for `pipespec serve`, side by side with a hand-written FastAPI endpoint
(parse JSON, apply the transforms, booster.predict, no schema checks) on the same uvicorn,
and with the floor: a FastAPI endpoint that reads the body and answers a constant (what
uvicorn, FastAPI and the client cost with no work at all). Loops are bounded; each server
runs in its own process on 127.0.0.1. A row "create_app on uvicorn" serves pipespec's app
on plain uvicorn (what `pipespec serve`'s own protocol and limits add is the difference).
Every server runs for the whole measure and the requests alternate between them (one
single-record request to each in turn, then the concurrent load in rounds, the order
reversed every round), so a shared machine's changing load falls on all of them alike.
The single-record requests are sent with the standard library's ``http.client``: httpx
spent about 2 ms of its own per request here, and part of a server's time hid behind it
(pipespec serve measured +0.38 ms over the floor with httpx, +0.55 ms with http.client, in
the same hour). The concurrent load uses httpx's threads.

Then, in this process (far less noisy on a shared machine): a raw ASGI call loop, no socket,
over pipespec's app and the floor's app alternately, and `predict_records` alone: the time
pipespec spends between uvicorn and the answer, per layer.

    python bench/http.py [--requests 2000] [--concurrency 8] [--bundle DIR]
                         [--engine both|lightgbm] [--compiled DIR] [--in-process-only]
                         [--compare SRC]

``--compare SRC`` adds a row "pipespec serve (SRC)": the same command run on another
checkout's code (``PYTHONPATH=SRC``, e.g. a copy of ``src/`` before a change), measured in the
same alternation, so a before/after comparison shares one run's load. Every server runs on
uvicorn's h11 protocol and asyncio's event loop (the output says so): `pipespec serve`'s
request deadline and head limit are built on h11 (``bundle/server.py``).

Without --bundle, a project is created in a temp dir and run once to build one. With
``--engine both`` (the default) `pipespec serve` is measured with each engine: LightGBM, and
the compiled-tree engine (``production.engine: lleaves``) from ``--compiled`` (a compile
stage's ``models/compiled``) or compiled here first.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
# This file is named like the standard library's `http`: keep its folder off the import path,
# or `import http.client` (httpx, imported later) would find this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

# The end of every server script: a health check, and uvicorn on a free port of 127.0.0.1.
SERVE = textwrap.dedent(
    """
    @app.get("/health")
    async def health():
        return {"status": "ok"}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(f"serving on http://127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    """
)

BASELINE = (
    textwrap.dedent(
        """
    import json, socket, sys
    import lightgbm as lgb
    import pandas as pd
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from pipespec.bundle.transforms import apply

    bundle = sys.argv[1]
    transforms = json.load(open(f"{bundle}/transforms.json"))
    booster = lgb.Booster(model_file=f"{bundle}/model.txt")
    names = booster.feature_name()
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request):
        record = json.loads(await request.body())
        frame = pd.DataFrame([record])
        p = booster.predict(apply(transforms, frame)[names], num_threads=1)
        return JSONResponse({"prediction": float(p[0])})
    """
    )
    + SERVE
)

FLOOR = (
    textwrap.dedent(
        """
    import socket, sys
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    app = FastAPI()
    answer = b'{"prediction": {"label": "1", "probability": 0.5}}'

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")
    """
    )
    + SERVE
)

# The pipespec app (``create_app``) on plain uvicorn: what `pipespec serve` adds around it
# (its protocol with request deadlines, its limits) shows as the difference to that row.
APP_ONLY = (
    textwrap.dedent(
        """
    import socket, sys
    import uvicorn
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.serve import create_app

    app = create_app(Bundle.load(sys.argv[1]))
    """
    )
    + SERVE.split("@app.get", 1)[0]
    + SERVE[SERVE.index("sock = ") :]
)


def start(
    argv: list[str], log: Path, env: dict[str, str] | None = None, on: set[int] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    import os

    import httpx

    pin = None if on is None else (lambda: os.sched_setaffinity(0, on))
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=fh, env=env, preexec_fn=pin)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            try:
                if httpx.get(found.group(1) + "/health", timeout=5).status_code == 200:
                    return proc, found.group(1)
            except httpx.TransportError:
                pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def sequential(urls: dict[str, str], record: dict, n: int) -> dict[str, list[float]]:
    """``n`` single-record requests to each server, one to each in turn (keep-alive), with
    the standard library's ``http.client``: a client that spends about 0.2 ms per request
    here where httpx spends 2 ms, so the server's share of each latency is most of it."""
    import http.client
    import json
    import socket
    from urllib.parse import urlsplit

    body = json.dumps(record).encode()
    headers = {"content-type": "application/json"}

    def post(conn: http.client.HTTPConnection) -> None:
        conn.request("POST", "/predict", body, headers)  # head and body in one send
        answer = conn.getresponse()
        text = answer.read()
        assert answer.status == 200, text

    latencies: dict[str, list[float]] = {name: [] for name in urls}
    conns = {}
    for name, url in urls.items():
        parts = urlsplit(url)
        conns[name] = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        conns[name].connect()
        conns[name].sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for conn in conns.values():
            for _ in range(min(50, n)):  # warm up
                post(conn)
        names = list(conns)
        for i in range(n):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                start = time.perf_counter()
                post(conns[name])
                latencies[name].append(time.perf_counter() - start)
    finally:
        for conn in conns.values():
            conn.close()
    return latencies


def alternating_load(
    urls: dict[str, str], record: dict, n: int, workers: int, rounds: int = 4
) -> dict[str, tuple[float, list[float]]]:
    """``concurrent`` on each server in ``rounds`` rounds (the order reversed every round):
    requests/s over all rounds, and the latencies."""
    names = list(urls)
    walls: dict[str, float] = dict.fromkeys(names, 0.0)
    done: dict[str, int] = dict.fromkeys(names, 0)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    per = max(workers, n // rounds)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            rps, loaded = concurrent(urls[name], record, per, workers)
            walls[name] += len(loaded) / rps
            done[name] += len(loaded)
            latencies[name].extend(loaded)
    return {name: (done[name] / walls[name], latencies[name]) for name in names}


def concurrent(url: str, record: dict, n: int, workers: int) -> tuple[float, list[float]]:
    import httpx

    per = n // workers
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        mine = []
        with httpx.Client(base_url=url) as client:
            for _ in range(per):
                start = time.perf_counter()
                answer = client.post("/predict", json=record)
                mine.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    errors.append(answer.text)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    assert not errors, errors[:3]
    return per * workers / wall, latencies


def in_process(bundle, record: dict, n: int) -> dict[str, float]:
    """p50 seconds of one POST /predict through a raw ASGI call (pipespec's app, the floor's
    app, interleaved in rounds) and of ``predict_records`` alone."""
    import asyncio
    import json

    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    from pipespec.bundle.prometheus import ServeMetrics
    from pipespec.bundle.serve import create_app, predict_records

    floor = FastAPI()
    answer = b'{"prediction": {"label": "1", "probability": 0.5}}'

    async def constant(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    # the annotations are text here (``from __future__``): give FastAPI the classes
    constant.__annotations__.update({"request": Request, "return": Response})
    floor.post("/predict")(constant)

    ours = create_app(bundle)
    body = json.dumps(record).encode()
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predict", "raw_path": b"/predict", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def call(app) -> None:
        sent = False
        status = []

        async def receive():
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(scope), receive, send)
        assert status == [200], status

    checked = bundle.check([dict(record)], typed=True)
    scores = bundle.score(checked)
    metrics = ServeMetrics(bundle)

    async def loop() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"asgi": [], "floor": [], "predict_records": []}
        times.update({"check": [], "score": [], "metrics": []})
        for _ in range(100):
            await call(ours)
            await call(floor)
        for _ in range(n):
            start = time.perf_counter()
            await call(ours)
            times["asgi"].append(time.perf_counter() - start)
            start = time.perf_counter()
            await call(floor)
            times["floor"].append(time.perf_counter() - start)
            start = time.perf_counter()
            predict_records(bundle, [dict(record)], single=True)
            times["predict_records"].append(time.perf_counter() - start)
            start = time.perf_counter()
            bundle.check([dict(record)], typed=True)
            times["check"].append(time.perf_counter() - start)
            start = time.perf_counter()
            bundle.score(checked)  # the transforms' matrix, then the model
            times["score"].append(time.perf_counter() - start)
            start = time.perf_counter()
            metrics.checked(checked, scores)
            times["metrics"].append(time.perf_counter() - start)
        return times

    times = asyncio.run(loop())
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--engine", choices=("both", "lightgbm"), default="both")
    parser.add_argument("--compiled", type=Path, default=None, help="a compiled cache directory")
    parser.add_argument("--in-process-only", action="store_true", help="skip the servers")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout's src/")
    args = parser.parse_args()

    import importlib.util

    from pipespec.bundle.bundle import Bundle
    from pipespec.stages.embedded import TARGET, generate

    spec = importlib.util.spec_from_file_location("bench_predict", HERE / "predict.py")
    assert spec is not None
    assert spec.loader is not None
    bench_predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_predict)
    build_bundle = bench_predict.build_bundle

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle_dir = args.bundle or build_bundle(work)
        bundle = Bundle.load(bundle_dir)
        rows = generate(200, seed=5).drop(columns=[TARGET])
        checked = bundle.check(rows)
        row = rows[checked.valid].iloc[0]
        record = {
            k: (None if v != v else getattr(v, "item", lambda v=v: v)()) for k, v in row.items()
        }
        (work / "baseline.py").write_text(BASELINE)
        (work / "floor.py").write_text(FLOOR)
        (work / "app_only.py").write_text(APP_ONLY)
        servers = {
            "pipespec serve": [
                str(BIN / "pipespec"),
                "serve",
                "--bundle",
                str(bundle_dir),
                "--port",
                "0",
            ],
            "create_app on uvicorn": [sys.executable, str(work / "app_only.py"), str(bundle_dir)],
            "hand-written FastAPI": [sys.executable, str(work / "baseline.py"), str(bundle_dir)],
            "floor (constant answer)": [sys.executable, str(work / "floor.py")],
        }
        envs: dict[str, dict[str, str]] = {}
        if args.compare is not None:
            import os

            compared = f"pipespec serve ({args.compare})"
            servers[compared] = [
                sys.executable,
                "-m",
                "pipespec.cli.main",
                *servers["pipespec serve"][1:],
            ]
            envs[compared] = {**os.environ, "PYTHONPATH": str(args.compare.resolve())}
        if args.engine == "both" and not args.in_process_only:  # beside its compiled cache
            import shutil

            shutil.copytree(bundle_dir, work / "lleaves" / "bundle")
            if args.compiled is None:
                took = bench_predict.compile_cache(bundle_dir, work / "lleaves" / "compiled")
                print(f"compiled with lleaves in {took:.1f}s")
            else:
                shutil.copytree(args.compiled, work / "lleaves" / "compiled")
            argv = servers["pipespec serve"]
            servers["pipespec serve (lleaves)"] = [*argv[:3], str(work / "lleaves" / "bundle")]
            servers["pipespec serve (lleaves)"] += argv[4:]
        results = {}
        local = in_process(bundle, record, args.requests)
        procs = []
        try:
            urls = {}
            for i, (name, argv) in enumerate(({} if args.in_process_only else servers).items()):
                proc, urls[name] = start(argv, work / f"server{i}.log", envs.get(name))
                procs.append(proc)
            if "pipespec serve (lleaves)" in urls:
                import httpx

                engine = httpx.get(f"{urls['pipespec serve (lleaves)']}/health").json()["engine"]
                assert engine["name"] == "lleaves", f"serving with LightGBM: {engine}"
            single = sequential(urls, record, args.requests) if urls else {}
            load = alternating_load(urls, record, args.requests, args.concurrency) if urls else {}
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
        for name in single:
            rps, loaded = load[name]
            results[name] = (
                pct(single[name], 0.5),
                pct(single[name], 0.99),
                rps,
                pct(loaded, 0.5),
                pct(loaded, 0.99),
            )

    print(
        f"in-process ASGI, {args.requests} calls each (p50): pipespec app "
        f"{local['asgi'] * 1e3:.3f} ms, floor app {local['floor'] * 1e3:.3f} ms, "
        f"predict_records {local['predict_records'] * 1e3:.3f} ms; pipespec over the floor "
        f"+{(local['asgi'] - local['floor']) * 1e3:.3f} ms ({local['asgi'] / local['floor']:.2f}x)"
    )
    print(
        f"  layers (p50 us): check {local['check'] * 1e6:.1f}, score (transforms + model) "
        f"{local['score'] * 1e6:.1f}, metrics {local['metrics'] * 1e6:.1f}"
    )
    if args.in_process_only:
        return
    import uvicorn

    print(
        f"{args.requests} single-record requests to each server, one to each in turn, "
        "127.0.0.1, keep-alive, client http.client; the load (httpx) in 4 alternating "
        f"rounds; every server: uvicorn {uvicorn.__version__}, http=h11, loop=asyncio"
    )
    load = f"req/s @{args.concurrency}"
    width = max(24, *map(len, results))
    print(f"{'':{width}} {'p50 ms':>8} {'p99 ms':>8} {load:>10} {'p50/p99 ms under load':>22}")
    for name, (p50, p99, rps, lp50, lp99) in results.items():
        print(f"{name:{width}} {p50:8.2f} {p99:8.2f} {rps:10.0f} {lp50:11.2f}/{lp99:.2f}")
    ours, theirs = results["pipespec serve"], results["hand-written FastAPI"]
    floor = results["floor (constant answer)"]
    print(
        f"ratio pipespec/hand-written: p50 latency {ours[0] / theirs[0]:.2f}x, "
        f"p99 {ours[1] / theirs[1]:.2f}x, throughput {ours[2] / theirs[2]:.2f}x"
    )
    print(
        f"pipespec over the floor: p50 {ours[0] - floor[0]:+.2f} ms, "
        f"p99 {ours[1] - floor[1]:+.2f} ms, throughput {ours[2] / floor[2]:.2f}x"
    )
    for name, other in results.items():
        if name.startswith("pipespec serve (") and name != "pipespec serve (lleaves)":
            print(
                f"{name} over the floor: p50 {other[0] - floor[0]:+.2f} ms, "
                f"p99 {other[1] - floor[1]:+.2f} ms, throughput {other[2] / floor[2]:.2f}x"
            )
    plain = results["create_app on uvicorn"]
    print(
        f"`pipespec serve` over create_app on plain uvicorn (its protocol, limits, process): "
        f"p50 {ours[0] - plain[0]:+.2f} ms, p99 {ours[1] - plain[1]:+.2f} ms, "
        f"throughput {ours[2] / plain[2]:.2f}x"
    )

    if "pipespec serve (lleaves)" in results:
        fast = results["pipespec serve (lleaves)"]
        print(
            f"engines, lleaves/lightgbm: p50 {fast[0] - ours[0]:+.2f} ms, "
            f"p99 {fast[1] - ours[1]:+.2f} ms, throughput {fast[2] / ours[2]:.2f}x"
        )


if __name__ == "__main__":
    main()
