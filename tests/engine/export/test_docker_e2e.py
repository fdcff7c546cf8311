"""The serving image's content without a container runtime: a fresh virtual environment
installed the way the exported Dockerfile installs it (its serving requirements, then
the wheel of pipespec the export wrote, with --no-deps) serves real requests on 127.0.0.1,
with nothing of training in it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pandas as pd
import pytest

from helpers import BIN, read_yaml, run_cli

pytestmark = pytest.mark.slow
TRAINING_ONLY = ("hydra-core", "omegaconf", "dvc", "optuna", "dask", "distributed",
                 "scikit-learn", "pandera")  # fmt: skip
URL = re.compile(r"on (http://127\.0\.0\.1:\d+)")


def _size(path: Path) -> int:
    """Bytes of the files under ``path``, without Python's bytecode caches."""
    return sum(
        p.stat().st_size
        for p in path.rglob("*")
        if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts
    )


def _serve(venv: Path, bundle: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = workdir / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(venv / "bin/pipespec"), "serve", "--bundle", str(bundle), "--port", "0"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=fh,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited {proc.returncode}:\n{log.read_text()}"
        found = URL.search(log.read_text(errors="replace"))
        if found:
            try:
                if httpx.get(f"{found.group(1)}/health", timeout=5).status_code == 200:
                    return proc, found.group(1)
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not answer:\n{log.read_text()}")


def test_serving_env_from_the_exported_requirements(bundled_project: Path, tmp_path: Path) -> None:
    root = bundled_project
    run_cli("export", "docker", cwd=root)
    docker = root / "deploy/docker"
    # the export wrote the wheel the Dockerfile's --find-links picks up (pipespec is on no
    # index here), recorded with its hash; a second export writes the same bytes
    from pipespec import __version__

    wheel = docker / f"wheels/pipespec-{__version__}-py3-none-any.whl"
    first = wheel.read_bytes()
    record = read_yaml(root / "exports.yaml")["targets"]["docker"]["files"]
    assert record[f"deploy/docker/wheels/{wheel.name}"] == hashlib.sha256(first).hexdigest()
    wheel.unlink()
    run_cli("export", "docker", cwd=root)
    assert wheel.read_bytes() == first
    run_cli("export", "--check", cwd=root)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert "pipespec/cli/main.py" in names
    assert "pipespec/templates/project/configs/config.yaml" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert f"pipespec-{__version__}.dist-info/entry_points.txt" in names
    # what the image does: COPY deploy/docker/ /app/docker/, then its RUN pip lines
    app = tmp_path / "app"
    shutil.copytree(docker, app / "docker")
    venv = tmp_path / "serve-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    text = (docker / "Dockerfile").read_text()
    run_line = re.search(r"^RUN (pip install .*?)(?<!\\)\n", text, re.M | re.S)
    assert run_line, text
    # the image's pip lines, with pip's download cache allowed (this machine's): the same
    # pins and steps, without fetching every wheel again
    script = run_line.group(1).replace("/app/", f"{app}/").replace(" --no-cache-dir", "")
    # PIP_NO_COMPILE: no .pyc written at install (a cache, left out of both sizes below)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_NO_COMPILE": "1", "HOME": str(Path.home())}  # fmt: skip
    install = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    listed = subprocess.run([str(venv / "bin/python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "pipespec" in names
    assert not names & set(TRAINING_ONLY), names & set(TRAINING_ONLY)

    bundle = root / "models/bundle"
    proc, url = _serve(venv, bundle, tmp_path)
    try:
        target = read_yaml(root / "params.yaml")["dataset"]["target"]
        rows = pd.read_parquet(root / "data/split/test.parquet").drop(columns=[target]).head(50)
        from pipespec.bundle.bundle import Bundle

        expected = Bundle.load(bundle).predict(rows, on_invalid="skip")
        body = json.loads(rows.loc[expected.index].to_json(orient="records"))
        answer = httpx.post(f"{url}/predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"]
        assert len(got) == len(expected) > 0
        served = [p.get("probability", p.get("value")) for p in got]
        assert served == pytest.approx(expected["prediction"].tolist(), abs=1e-12)
        health = httpx.get(f"{url}/health", timeout=5)
        assert health.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    serve_mb, full_mb = _size(venv) / 2**20, _size(BIN.parent) / 2**20
    print(f"serving env {serve_mb:.0f} MiB, full env {full_mb:.0f} MiB (without bytecode)")
    assert serve_mb < full_mb
