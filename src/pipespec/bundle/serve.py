"""The HTTP prediction service: FastAPI over a verified bundle. Imports neither Hydra nor DVC.

``POST /predict`` takes one record (a JSON object) or a list of them and answers with
``{"prediction": ..., "warnings": [...]}`` or ``{"predictions": [...], "warnings": [...]}``;
``GET /health``; ``GET /metadata`` (the model card and the train/serve contract). Records go
through the same code as batch prediction and evaluation (``Bundle.check``, then the
transforms' interpreter, then the model), so all give the same numbers.

Malformed requests get a 4xx whose message names the record and the field: 400 malformed
JSON, 413 body or list too large, 415 a body that is not declared JSON, 422 what the schema
refuses (missing field, wrong type, NaN or infinity, empty list, a key given twice, and the
unusual values ``production.strict`` refuses). Unusual values (out of range, unseen
category, unexpected null, a fraction where training had whole numbers) are predicted as
training treats them, and each is named in ``warnings``.

A client that hangs up before its body is complete gets no answer; it is counted as
``status="499"`` (nginx's "client closed request"), or ``"408"`` when the server cut it off
for being too slow (``pipespec.bundle.server``), and logged in one line, never as a 5xx.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request  # at module level: FastAPI resolves the annotation
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from pipespec.bundle.bundle import Bundle
from pipespec.bundle.inputs import InputProblem, NonFinite
from pipespec.bundle.reader import clean_records
from pipespec.core.console import error
from pipespec.core.documents import to_json

if TYPE_CHECKING:
    from pipespec.bundle.prometheus import ServeMetrics

MAX_ERRORS = 50  # problems listed in one 422 answer
HUNG_UP = 499  # the status counted for a client that left before its request was complete
TIMED_OUT = "pipespec.timed_out"  # set in a request's scope state when its body was too slow
TOO_SLOW = 408  # ... and for one the server cut off (``pipespec.bundle.server.Limits``)
JSON_TYPES = ("application/json",)  # and any ``application/*+json``
JSON = "application/json"  # what every answer with a body is
PREDICT = "/predict"
# Called with each answered request's records, outputs and scoring seconds (shadow serving).
Observer = Callable[[list[dict[str, Any]], list[dict[str, Any]], float], None]


class _Reject(Exception):
    """A request that gets a 4xx: status, message and (for 422) the problems."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []


class PredictionLog:
    """Appends one JSON line per predicted record: time, bundle, input and output."""

    def __init__(self, path: str | os.PathLike[str], bundle_sha: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed on shutdown)
        self._lock = threading.Lock()
        self._sha = bundle_sha[:12]

    def write(
        self,
        records: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        warnings: list[dict[str, Any]],
    ) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        per_record: dict[int, list[str]] = {}
        for w in warnings:
            per_record.setdefault(w["record"], []).append(f"{w['field']}: {w['reason']}")
        lines = "".join(
            json.dumps(
                {
                    "time": stamp,
                    "bundle": self._sha,
                    "input": r,
                    "output": o,
                    **({"warnings": per_record[i]} if i in per_record else {}),
                },
                default=str,
                allow_nan=False,
            )
            + "\n"
            for i, (r, o) in enumerate(zip(records, outputs, strict=True))
        )
        with self._lock:
            self._fh.write(lines)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def create_app(
    bundle: Bundle,
    *,
    log: str | os.PathLike[str] | None = None,
    release: dict[str, Any] | None = None,
    observer: Observer | None = None,
) -> FastAPI:
    """The FastAPI application serving ``bundle``; ``log`` appends predictions as JSON lines;
    ``release`` (the registry's version, stage and evidence of a fetched bundle) goes into
    ``/health`` and ``/metadata``; ``observer`` is called with every answered request's
    records, outputs and scoring time (shadow serving), after the answer is ready."""
    from pipespec.bundle.engine import import_lightgbm, select

    import_lightgbm()  # a Booster only: without scikit-learn, a faster start
    engine = select(bundle)  # the compiled model when its key matches, else LightGBM
    _warm_up(bundle)
    from pipespec.bundle.prometheus import CONTENT_TYPE, ServeMetrics

    metrics = ServeMetrics(bundle)
    limits = {
        "max_records": bundle.policy.max_records,
        "max_body_bytes": bundle.policy.max_body_bytes,
    }
    logger = PredictionLog(log, bundle.sha) if log else None
    metadata = _json_bytes(
        {
            "bundle": {
                "sha256": bundle.sha,
                "format_version": bundle.manifest["format_version"],
                "path": str(bundle.path),
            },
            "card": bundle.card,
            "contract": to_json(bundle.contract),
            "limits": limits,
            "release": release,
        }
    )
    served = {k: release.get(k) for k in ("version", "stage")} if release else {}
    health = _json_bytes(
        {"status": "ok", "bundle": bundle.sha, "model": bundle.card.get("name"), **served}
        | {"engine": engine.status()}
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if logger is not None:
            logger.close()

    app = _Service(
        title=f"pipespec: {bundle.card.get('name', 'model')}",
        description="Predictions from a pipespec bundle. POST /predict a record or a list.",
        version=bundle.sha[:12],
        lifespan=lifespan,
    )

    @app.get("/health")
    async def get_health() -> Response:
        metrics.request("/health", 200, 0.0)
        return Response(health, media_type="application/json")

    @app.get("/metadata")
    async def get_metadata() -> Response:
        metrics.request("/metadata", 200, 0.0)
        return Response(metadata, media_type="application/json")

    @app.get("/metrics")
    async def get_metrics() -> Response:
        started = time.perf_counter()
        text = metrics.render() + engine.exposition(bundle.sha)
        metrics.request("/metrics", 200, time.perf_counter() - started)
        return Response(text, media_type=CONTENT_TYPE)

    @app.post("/predict")
    async def post_predict(request: Request) -> Response:
        """The route FastAPI documents (``/docs``); requests are answered by ``predict``."""
        status, body, kind = await _answer(request.scope, request.receive)
        return Response(body, status_code=status, media_type=kind)

    async def predict(scope: Scope, receive: Receive, send: Send) -> None:
        status, body, kind = await _answer(scope, receive)
        headers = [(b"content-length", str(len(body)).encode())]
        if kind is not None:
            headers.append((b"content-type", kind.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(scope: Scope, receive: Receive) -> tuple[int, bytes, str | None]:
        received = time.perf_counter()
        status, body, kind = await _predict(scope, receive)
        metrics.request("/predict", status, time.perf_counter() - received)
        return status, body, kind

    async def _predict(scope: Scope, receive: Receive) -> tuple[int, bytes, str | None]:
        try:
            content_type, length = _head(scope["headers"])
            _json_only(content_type)
            body = await _read_body(receive, length, limits["max_body_bytes"])
            payload = _parse(body)
            single = isinstance(payload, dict)
            records = _records(payload, limits["max_records"])
            started = time.perf_counter()
            outputs, warnings = predict_records(bundle, records, single=single, metrics=metrics)
            seconds = time.perf_counter() - started
        except _Reject as exc:
            content: dict[str, Any] = {"error": exc.message}
            if exc.errors:
                content["errors"] = exc.errors
            return exc.status, _json_bytes(content), JSON
        except ClientDisconnect:
            return _hung_up(scope)
        except Exception as exc:  # a bug, not a bad request: say so, keep serving
            import traceback

            traceback.print_exc()
            content = {"error": f"internal error: {type(exc).__name__}: {exc}"}
            return 500, _json_bytes(content), JSON
        if logger is not None:
            try:
                logger.write(records, outputs, warnings)
            except OSError as exc:  # a full disk, say: the answer would not be logged
                error(f"cannot write the prediction log {logger.path}: {exc.strerror or exc}")
                content = {"error": f"cannot write the prediction log: {exc.strerror or exc}"}
                return 500, _json_bytes(content), JSON
        if observer is not None:
            observer(records, outputs, seconds)
        answer: dict[str, Any] = {"prediction": outputs[0]} if single else {"predictions": outputs}
        answer["warnings"] = warnings
        return 200, _json_bytes(answer), JSON

    app.predict = predict
    return app


class _Service(FastAPI):
    """FastAPI, with ``POST /predict`` answered straight from the ASGI call.

    FastAPI's middleware stack (server errors, exceptions, body limits, telemetry, the async
    exit stack), its router and its per-request dependency solving cost about as much as a
    one-record prediction (``bench/http.py``), and the prediction endpoint needs none of
    them: it reads the bare body, turns every error into its own answer (4xx, 499/408, 500)
    and sends a ready JSON body. Every other path, and ``/predict`` with another method,
    goes through FastAPI as usual, and the route stays FastAPI's, so ``/docs`` lists it."""

    predict: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.predict is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == scope.get("root_path", "") + PREDICT
        ):
            scope["app"] = self
            await self.predict(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _head(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, int | None]:
    """The request's Content-Type and Content-Length (None when absent or not a number)."""
    content_type = length = None
    for name, value in headers:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit():
            length = int(value)
    return content_type, length


def _hung_up(scope: Scope) -> tuple[int, bytes, None]:
    """The client left (or was cut off) before its body was complete: one line, no answer."""
    timed_out = bool(scope.get("state", {}).get(TIMED_OUT))
    client = scope.get("client")
    who = f"{client[0]}:{client[1]}" if client else "a client"
    why = "was too slow: cut off" if timed_out else "hung up"
    error(f"POST /predict: {who} {why} before its request body was complete; not answered")
    return (TOO_SLOW if timed_out else HUNG_UP), b"", None


def _json_only(content_type: str | None) -> None:
    """A 415 unless the body is declared JSON (``application/json``, ``...+json``)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return
    shown = f"'{content_type}'" if content_type else "none"
    raise _Reject(
        415,
        f"the body must be JSON: Content-Type is {shown}; send 'Content-Type: application/json'",
    )


def predict_records(
    bundle: Bundle,
    records: list[dict[str, Any]],
    *,
    single: bool = False,
    metrics: ServeMetrics | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check JSON records, predict them, and name every warning; a 422 ``_Reject`` names
    every refused field (up to ``MAX_ERRORS``).

    Records are cleaned as training read its files (``strip``, missing-value markers), then
    go the way batch prediction goes: ``Bundle.check`` and ``Bundle.score``."""
    records = clean_records(records, bundle.reading)
    checked = bundle.check(records, typed=True)
    noted = bool(checked.problems)  # the usual request: nothing refused or flagged
    if noted and checked.n_invalid:
        if metrics is not None:
            metrics.checked(checked, None)
        raise _rejection(list(checked.iter_problems(kind="refused")), single)
    scores = bundle.score(checked)
    if metrics is not None:
        metrics.checked(checked, scores)
    outputs = bundle.records(scores)
    if not noted:
        return outputs, []
    warnings = [p.to_json() for p in checked.iter_problems(limit=MAX_ERRORS, kind="warning")]
    return outputs, warnings


def _rejection(problems: list[InputProblem], single: bool) -> _Reject:
    """The 422 for ``problems`` (in record order, then schema order)."""
    errors = [p.to_json() for p in problems[:MAX_ERRORS]]
    first = problems[0]
    where = "" if single else f"record {first.row}: "
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return _Reject(422, f"{where}{first.message()}{more}", errors)


async def _read_body(receive: Receive, length: int | None, limit: int) -> bytes:
    """The request body, read from the ASGI messages (as Starlette's ``Request.stream``);
    ``ClientDisconnect`` when the client leaves first, a 413 past ``limit`` bytes."""
    if length is not None and length > limit:
        raise _Reject(413, f"request body of {length:,} bytes is over the limit of {limit:,}")
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body = message.get("body", b"")  # the usual case: the whole body in one message
    else:
        chunks = bytearray()
        while True:
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunks += message.get("body", b"")
            if len(chunks) > limit:
                break
            if not message.get("more_body", False):
                break
            message = await receive()
        body = bytes(chunks)
    if len(body) > limit:
        raise _Reject(413, f"request body is over the limit of {limit:,} bytes")
    return body


def _parse(body: bytes) -> Any:
    if not body.strip():
        raise _Reject(400, "malformed JSON: the request body is empty")
    try:
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except _Duplicate as exc:
        raise _Reject(
            422,
            f"field '{exc.key}': given twice in one JSON object; send each key once",
            [{"record": None, "field": exc.key, "reason": "duplicate key", "message": str(exc)}],
        ) from None
    except json.JSONDecodeError as exc:
        raise _Reject(
            400, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:  # bad UTF-8, absurd nesting
        raise _Reject(400, f"malformed JSON: {exc}") from None


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key '{key}' is given twice in one JSON object")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice (json keeps the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return obj


# ``json.loads`` and ``json.dumps`` with options build a decoder or encoder per call; these
# are theirs, built once (``_parse`` decodes the bytes as ``json.loads`` does).
_DECODER = json.JSONDecoder(parse_constant=NonFinite, object_pairs_hook=_unique)
_ENCODER = json.JSONEncoder(allow_nan=False, default=str)


def _records(payload: Any, max_records: int) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list):
        raise _Reject(
            422,
            "the body must be a JSON object (one record) or a list of objects, "
            f"not {_json_type(payload)}",
        )
    if not payload:
        raise _Reject(422, "empty list: send at least one record")
    if len(payload) > max_records:
        raise _Reject(
            413,
            f"{len(payload):,} records in one request; at most {max_records:,} "
            "(production.max_records). Split the list, or use `pipespec predict` for batches",
        )
    for i, item in enumerate(payload):
        if not isinstance(item, dict):
            raise _Reject(
                422,
                f"record {i}: expected a JSON object, not {_json_type(item)}",
                [{"record": i, "field": None, "reason": "wrong type", "message": "not an object"}],
            )
    return payload


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else type(value).__name__


def _json_bytes(data: Any) -> bytes:
    return _ENCODER.encode(data).encode()


def _warm_up(bundle: Bundle) -> None:
    """Load the model and run the path once, so the first request is not slow."""
    bundle.score(bundle.check([{}], typed=True))
