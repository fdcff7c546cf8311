"""`pipespec serve`: a real uvicorn on 127.0.0.1 and real HTTP. Every bad request gets a 4xx
naming the field, the server keeps answering, the serving path imports neither Hydra nor DVC,
and predictions can be logged for monitoring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from bundle_helpers import Server, records

from helpers import SMALL, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def good(trained_project: Path) -> dict:
    """A record the bundle accepts (from the training split, target removed)."""
    from pipespec.bundle.bundle import Bundle

    rows = pd.read_parquet(trained_project / "data" / "split" / "train.parquet")
    valid = Bundle.load(trained_project / "models" / "bundle").predict(rows, on_invalid="skip")
    return records(rows.loc[valid.index[:1]].drop(columns=["churned"]))[0]


def with_(record: dict, **changes: object) -> dict:
    return {**record, **changes}


def raw(record: dict, field: str, literal: str) -> bytes:
    """JSON text of ``record`` with ``field``'s value replaced by a raw literal (NaN, ...)."""
    text = json.dumps({**record, field: "__X__"})
    return text.replace('"__X__"', literal).encode()


BATTERY = [  # (name, body maker, status, text that the error must contain, field)
    ("missing field", lambda g: {k: v for k, v in g.items() if k != "age"}, 422, "missing", "age"),
    ("wrong type", lambda g: with_(g, age="forty"), 422, "wrong type", "age"),
    ("bool for number", lambda g: with_(g, support_calls=True), 422, "wrong type", "support_calls"),
    ("list for text", lambda g: with_(g, region=["north"]), 422, "wrong type", "region"),
    ("NaN", lambda g: raw(g, "age", "NaN"), 422, "not finite: NaN", "age"),
    (
        "Infinity",
        lambda g: raw(g, "monthly_charges", "Infinity"),
        422,
        "not finite",
        "monthly_charges",
    ),
    ("1e999", lambda g: raw(g, "monthly_charges", "1e999"), 422, "not finite", "monthly_charges"),
    (
        "huge integer",
        lambda g: raw(g, "tenure_months", "9" * 400),
        422,
        "not finite",
        "tenure_months",
    ),
    # valid JSON, but not text any table can hold
    ("lone surrogate", lambda g: raw(g, "region", '"\\ud800"'), 422, "wrong type", "region"),
    (
        "bad record in a list",
        lambda g: [g, g, with_(g, age="x")],
        422,
        "record 2: field 'age'",
        "age",
    ),
    ("empty list", lambda g: [], 422, "empty list", None),
    ("not an object", lambda g: 42, 422, "a JSON object (one record) or a list", None),
    ("non-object in a list", lambda g: [g, "x"], 422, "record 1: expected a JSON object", None),
    ("malformed JSON", lambda g: b'{"age": 40,', 400, "malformed JSON at line 1", None),
    ("empty body", lambda g: b"", 400, "malformed JSON", None),
    ("bad UTF-8", lambda g: b'{"age": "\xff\xfe"}', 400, "malformed JSON", None),
    ("deep nesting", lambda g: b"[" * 200_000, 400, "malformed JSON", None),
    ("too many records", lambda g: [g] * 1001, 413, "at most 1,000", None),
    ("too large body", lambda g: b" " * 1_100_000, 413, "over the limit", None),
    (
        "duplicate key",
        lambda g: json.dumps(g)[:-1].encode() + b', "age": 41}',
        422,
        "given twice in one JSON object",
        "age",
    ),
    (
        "duplicate key in a list",
        lambda g: b"[" + json.dumps(g).encode() + b', {"region": "north", "region": "x"}]',
        422,
        "given twice",
        "region",
    ),
]


def _post(server: Server, body: object) -> object:
    if isinstance(body, bytes):
        headers = {"content-type": "application/json"}
        return server.client.post("/predict", content=body, headers=headers)
    return server.client.post("/predict", json=body)


def test_bad_requests_get_a_4xx_naming_the_field(bundle_server: Server, good: dict) -> None:
    for name, make, status, text, field in BATTERY:
        answer = _post(bundle_server, make(good))
        assert answer.status_code == status, (name, answer.status_code, answer.text)
        error = answer.json()["error"]
        assert text in error, (name, error)
        if field is not None:
            assert f"field '{field}'" in error, (name, error)
            assert answer.json()["errors"][0]["field"] == field, name
        # the server keeps answering, correctly
        assert bundle_server.client.get("/health").status_code == 200, name
        ok = bundle_server.client.post("/predict", json=good)
        assert ok.status_code == 200, (name, ok.text)
    assert "Traceback" not in bundle_server.stderr()


NOT_JSON = [  # (content type or None, shown in the message)
    ("text/plain", "'text/plain'"),
    ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
    ("multipart/form-data; boundary=x", "'multipart/form-data; boundary=x'"),
    (None, "none"),
]


def test_only_json_bodies_are_read(bundle_server: Server, good: dict) -> None:
    """415 for any other declared type, or none; JSON's own types and charsets pass."""
    body = json.dumps(good).encode()
    for kind, shown in NOT_JSON:
        headers = {"content-type": kind} if kind else {}
        request = bundle_server.client.build_request("POST", "/predict", content=body)
        if kind is None:
            assert "content-type" not in request.headers  # httpx sets none for raw content
        request.headers.update(headers)
        answer = bundle_server.client.send(request)
        assert answer.status_code == 415, (kind, answer.text)
        assert answer.json()["error"] == (
            f"the body must be JSON: Content-Type is {shown}; send 'Content-Type: application/json'"
        )
    for kind in ("application/json", "application/json; charset=utf-8", "Application/JSON",
                 "application/vnd.api+json"):  # fmt: skip
        answer = bundle_server.client.post("/predict", content=body, headers={"content-type": kind})
        assert answer.status_code == 200, (kind, answer.text)


def test_numbers_sent_as_text_are_read_as_batch_reads_them(
    bundle_server: Server, bundle_dir: Path, good: dict, tmp_path: Path
) -> None:
    """{"support_calls": "2"} is 2 over HTTP, as in a file that `pipespec predict` reads."""
    numbers = with_(good, support_calls=2, age=40.5)
    as_text = with_(good, support_calls="2", age="40.5")
    answer = bundle_server.client.post("/predict", json=as_text)
    assert answer.status_code == 200, answer.text
    assert answer.json() == bundle_server.client.post("/predict", json=numbers).json()
    # the same record through batch prediction, from a JSON-lines file holding the text
    source = tmp_path / "text.jsonl"
    source.write_text(json.dumps(as_text) + "\n")
    run_cli("predict", "--bundle", str(bundle_dir), str(source), str(tmp_path / "out.csv"),
            cwd=tmp_path)  # fmt: skip
    batch = pd.read_csv(tmp_path / "out.csv")
    assert batch["prediction"][0] == pytest.approx(answer.json()["prediction"]["probability"])
    # text that is no number stays a wrong type, in both
    bad = bundle_server.client.post("/predict", json=with_(good, support_calls="two"))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["reason"] == "wrong type"


UNUSUAL = [  # (body change, field, reason): predicted as training treats them, and flagged
    ({"age": 1000}, "age", "out of range"),
    ({"region": "mars"}, "region", "unseen category"),
    ({"contract": None}, "contract", "unexpected null"),
    ({"support_calls": 1.5}, "support_calls", "not a whole number"),
]


def test_unusual_values_are_predicted_with_warnings(bundle_server: Server, good: dict) -> None:
    plain = bundle_server.client.post("/predict", json=good).json()
    assert plain["warnings"] == []
    for change, field, reason in UNUSUAL:
        answer = bundle_server.client.post("/predict", json=with_(good, **change))
        assert answer.status_code == 200, answer.text
        assert answer.json()["warnings"] == [
            {
                "record": 0,
                "field": field,
                "reason": reason,
                "message": answer.json()["warnings"][0]["message"],
            }
        ]
        assert f"field '{field}'" in answer.json()["warnings"][0]["message"]
        assert 0 <= answer.json()["prediction"]["probability"] <= 1
    # in a list, each warning names its record
    answer = bundle_server.client.post(
        "/predict", json=[good, with_(good, region="mars"), with_(good, age=1000)]
    )
    assert [(w["record"], w["field"]) for w in answer.json()["warnings"]] == [
        (1, "region"),
        (2, "age"),
    ]


def test_strict_mode_refuses_unusual_values(
    trained_project: Path, tmp_path_factory: pytest.TempPathFactory, good: dict, serve
) -> None:
    """production.strict turns each kind of unusual input into a 422 naming the field."""
    import shutil

    root = tmp_path_factory.mktemp("strict") / "proj"
    shutil.copytree(trained_project, root, symlinks=True)
    proc = run_cli(
        "run", *SMALL, "production.strict.out_of_range=true",
        "production.strict.unseen_category=true", "production.strict.unexpected_null=true",
        cwd=root,
    )  # fmt: skip
    ran = next(line for line in proc.stdout.splitlines() + proc.stderr.splitlines()
               if line.startswith("ran:"))  # fmt: skip
    assert "package" in ran
    assert " train" not in ran  # a serving policy change does not re-train
    server = serve(root / "models" / "bundle")
    for change, field, reason in UNUSUAL[:3]:  # a fraction for an integer is only flagged
        answer = server.client.post("/predict", json=with_(good, **change))
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == field
        assert answer.json()["errors"][0]["reason"] == reason
        assert f"field '{field}'" in answer.json()["error"]
    assert server.client.post("/predict", json=good).status_code == 200


def test_every_bad_field_of_a_record_is_listed(bundle_server: Server, good: dict) -> None:
    bad = with_(good, age="x", region=3)
    del bad["contract"]
    answer = bundle_server.client.post("/predict", json=bad)
    assert answer.status_code == 422
    fields = [e["field"] for e in answer.json()["errors"]]
    assert fields == ["age", "region", "contract"]
    assert "(and 2 more)" in answer.json()["error"]


def test_health_and_metadata(bundle_server: Server, bundle_dir: Path) -> None:
    from pipespec.bundle.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    health = bundle_server.client.get("/health").json()
    engine = health.pop("engine")  # no compiled model beside it: LightGBM, as requested
    assert health == {"status": "ok", "bundle": bundle.sha, "model": bundle.card["name"]}
    assert (engine["name"], engine["requested"], engine["fallback"]) == ("lightgbm",) * 2 + (False,)
    meta = bundle_server.client.get("/metadata").json()
    assert meta["card"] == bundle.card
    contract = meta["contract"]
    assert [c["name"] for c in contract["schema"]["columns"]] == bundle.schema.names
    assert contract["output"]["task"] == "binary"
    assert contract["reading"]["format"] == "parquet"
    assert contract["policy"]["strict"] == {
        "out_of_range": False,
        "unseen_category": False,
        "unexpected_null": False,
    }
    assert meta["limits"] == {"max_records": 1000, "max_body_bytes": 1048576}
    assert bundle_server.client.get("/nope").status_code == 404
    assert bundle_server.client.get("/predict").status_code == 405


def test_predict_answers_past_fastapi_and_stays_documented(
    bundle_server: Server, good: dict
) -> None:
    """POST /predict is answered straight from the ASGI call (``serve._Service``): the same
    JSON answer and headers, and FastAPI still documents the route."""
    answer = bundle_server.client.post("/predict", json=good)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert set(answer.json()) == {"prediction", "warnings"}
    assert answer.json()["warnings"] == []
    paths = bundle_server.client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/predict"]


def test_serving_imports_neither_hydra_nor_dvc(bundle_dir: Path) -> None:
    code = f"""
import sys
from pipespec.cli import main, production  # the `pipespec serve` command path
from pipespec.bundle.bundle import Bundle
from pipespec.bundle.serve import create_app
from fastapi.testclient import TestClient

app = create_app(Bundle.load({str(bundle_dir)!r}))
with TestClient(app) as client:
    assert client.get("/health").status_code == 200
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("hydra", "dvc", "omegaconf"))
print("IMPORTED", heavy)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED []" in proc.stdout, proc.stdout


def test_predictions_are_logged_and_monitorable(
    serve, bundle_dir: Path, trained_project: Path, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "predictions.jsonl"
    server = serve(bundle_dir, "--log", str(log))
    rows = pd.read_parquet(trained_project / "data" / "split" / "valid.parquet")
    body = records(rows.drop(columns=["churned"]))
    answer = server.client.post("/predict", json=body)
    if answer.status_code == 422:  # leave out the rows the schema refuses
        bad = {e["record"] for e in answer.json()["errors"]}
        body = [r for i, r in enumerate(body) if i not in bad]
        answer = server.client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    server.client.post("/predict", json={"age": "bad"})  # refused: not logged
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == len(body)
    assert lines[0]["input"] == body[0]
    assert lines[0]["output"] == answer.json()["predictions"][0]
    assert lines[0]["bundle"]
    assert lines[0]["time"].endswith("Z")

    proc = run_cli(
        "monitor", "--bundle", str(bundle_dir), "--current", str(log), "--report", "log",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 8), proc.stderr
    report = json.loads((tmp_path / "log.json").read_text())
    assert report["rows"] == len(body)
    assert report["violations"]["rows"] == 0


def test_port_in_use_is_a_clear_error(
    bundle_server: Server, bundle_dir: Path, tmp_path: Path
) -> None:
    port = bundle_server.url.rsplit(":", 1)[1]
    proc = run_cli("serve", "--bundle", str(bundle_dir), "--port", port, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
