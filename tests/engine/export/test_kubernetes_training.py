"""`pipespec export kubernetes-training`: the Jobs, DaskCluster and SparkApplication pass the
strictest validators available without an API server, and the Jobs' own commands, each run
in a fresh clone of the project (as separate pods would) sharing only a directory DVC remote,
reproduce the local run byte for byte."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from helpers import BIN, SMALL, commit_all, read_yaml, run_cli, run_tool

KUBERNETES = "1.33.0"  # the Kubernetes version the built-in kinds are validated against
CRDS = Path(__file__).parent / "crds"
FOLDER = "deploy/kubernetes/training"


def _crd_schema(file: str) -> dict[str, Any]:
    """The served version's OpenAPI schema of a CRD, as jsonschema reads it."""
    doc = next(d for d in yaml.safe_load_all((CRDS / file).read_text()) if d)
    version = next(v for v in doc["spec"]["versions"] if v.get("served"))
    schema = dict(version["schema"]["openAPIV3Schema"])
    # every object has these, whether its CRD lists them or not (the API server adds them)
    schema["properties"] = {
        "apiVersion": {"type": "string", "enum": [f"{doc['spec']['group']}/{version['name']}"]},
        "kind": {"type": "string", "enum": [doc["spec"]["names"]["kind"]]},
        "metadata": {"type": "object"},
        **schema["properties"],
    }
    return schema


def _strict(schema: Any) -> Any:
    """CRD schemas leave out additionalProperties: refuse unknown fields as the API server's
    strict field validation does (objects with properties only)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _no_nulls(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _no_nulls(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [_no_nulls(v) for v in doc]
    return doc


def validate(doc: dict[str, Any]) -> None:
    """kubernetes-validate (strict) for built-in kinds; the CRD's schema for the others."""
    doc = _no_nulls(doc)
    crd = {"DaskCluster": "daskcluster.yaml", "SparkApplication": "sparkapplication.yaml"}
    if doc["kind"] in crd:
        schema = _strict(_crd_schema(crd[doc["kind"]]))
        jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def _export(root: Path, *overrides: str) -> dict[str, dict[str, Any]]:
    run_cli("compose", *overrides, cwd=root)
    run_cli("export", "kubernetes-training", cwd=root)
    folder = root / FOLDER
    return {p.name: read_yaml(p) for p in sorted(folder.glob("*.yaml"))}


@pytest.fixture
def remote_project(new_project: Callable[..., Path], tmp_path: Path) -> Path:
    root = new_project()
    run_tool("dvc", "remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=root)
    return root


def test_jobs_and_dask_cluster_pass_the_strict_validators(remote_project: Path) -> None:
    docs = _export(
        remote_project,
        "compute=dask",
        "kubernetes.namespace=ml",
        "kubernetes.service_account=trainer",
        "kubernetes.secrets=[dvc-remote-credentials]",
    )
    kinds = [d["kind"] for d in docs.values()]
    assert kinds[0] == "DaskCluster"
    assert set(kinds[1:]) == {"Job"}
    for doc in docs.values():
        validate(doc)
    cluster = docs["00-dask-cluster.yaml"]
    assert cluster["spec"]["worker"]["replicas"] == 2
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["memory"] == str(4 * 2**30)  # compute.memory_limit
    job = docs["01-load.yaml"]
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "trainer"
    container = pod["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "dvc-remote-credentials"}}]
    assert container["env"] == [
        {"name": "PIPESPEC_DASK_ADDRESS", "value": "tcp://pipespec-dask-scheduler.ml:8786"}
    ]
    # stages in dependency order: every Job's upstream stages come before it
    seen: set[str] = set()
    for name, doc in docs.items():
        if doc["kind"] == "Job":
            after = doc["metadata"]["annotations"].get("pipespec.dev/after", "")
            assert set(filter(None, after.split(","))) <= seen, name
            seen.add(doc["metadata"]["labels"]["app.kubernetes.io/component"])
    # stable text
    before = {p: p.read_bytes() for p in (remote_project / FOLDER).iterdir()}
    run_cli("export", "--check", cwd=remote_project)
    run_cli("export", "kubernetes-training", cwd=remote_project)
    assert {p: p.read_bytes() for p in (remote_project / FOLDER).iterdir()} == before


def test_invalid_values_are_caught(remote_project: Path) -> None:
    docs = _export(remote_project, "compute=dask")
    cluster = copy.deepcopy(docs["00-dask-cluster.yaml"])
    cluster["spec"]["worker"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="'two' is not of type 'integer'"):
        validate(cluster)
    job = copy.deepcopy(docs["01-load.yaml"])
    job["spec"]["backoffLimit"] = "none"
    with pytest.raises(kubernetes_validate.ValidationError, match="'none' is not of type"):
        validate(job)
    job = copy.deepcopy(docs["01-load.yaml"])
    job["spec"]["template"]["spec"]["containers"][0]["workDir"] = "/x"  # a typo of workingDir
    with pytest.raises(kubernetes_validate.ValidationError, match="workDir"):
        validate(job)


def test_spark_application_passes_its_crd(remote_project: Path) -> None:
    from pipespec.engine.export import kubernetes_training
    from pipespec.engine.export.base import ExportContext
    from pipespec.engine.pipeline import load_pipeline
    from pipespec.engine.project import Project

    run_cli("compose", cwd=remote_project)
    project = Project(remote_project)
    params = read_yaml(remote_project / "params.yaml")
    params["compute"] = {**params["compute"], "backend": "spark", "executors": 3,
                         "memory": "2GiB"}  # fmt: skip
    ctx = ExportContext(project, params, load_pipeline(project, params))
    ((rel, app),) = kubernetes_training.documents(ctx)
    assert rel.endswith("00-spark.yaml")
    validate(app)
    assert app["spec"]["executor"] == {"instances": 3, "cores": 1, "memory": "2g"}
    bad = copy.deepcopy(app)
    bad["spec"]["executor"]["instances"] = "3"
    with pytest.raises(jsonschema.ValidationError, match="'3' is not of type 'integer'"):
        validate(bad)


def test_composition_refuses_bad_kubernetes_values(remote_project: Path) -> None:
    proc = run_cli(
        "compose", "kubernetes.namespace=Team_ML", "kubernetes.resources.memory_limit=lots",
        "orchestrator.image=my image", cwd=remote_project, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "'kubernetes.namespace'" in proc.stderr
    assert "DNS-1123" in proc.stderr
    assert "'kubernetes.resources.memory_limit'" in proc.stderr
    assert "'orchestrator.image'" in proc.stderr
    assert "not an image reference" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_export_refuses_without_a_committed_remote(new_project: Callable[..., Path]) -> None:
    root = new_project()
    proc = run_cli("export", "kubernetes-training", cwd=root, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "kubernetes.remote" in proc.stderr
    assert "dvc remote add -d" in proc.stderr
    assert not (root / FOLDER).exists()


def _ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def run_in_fresh_clones(root: Path, commands: list[tuple[str, str]], work: Path) -> Path:
    """Run each (stage, script) in a new `git clone` of ``root``; return the last clone.

    Each task must run only its own stage (and the cheap `configs` check): the upstream
    stages come from the remote's run cache."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    clone = work
    for i, (stage, command) in enumerate(commands):
        clone = work / f"pod-{i:02d}-{stage}"
        run_tool("git", "clone", "-q", str(root), str(clone), cwd=work)
        proc = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True,
                              text=True, check=False, timeout=600)  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert set(_ran(out)) - {"configs"} <= {stage}, (stage, _ran(out))
    return clone


@pytest.mark.slow
@pytest.mark.timeout(2400)  # nine stages, each a fresh clone restoring its upstream
def test_jobs_run_in_fresh_clones_like_a_local_run(
    remote_project: Path, trained_project: Path, tmp_path: Path
) -> None:
    docs = _export(remote_project, *SMALL)
    commit_all(remote_project, "project with its training Jobs")
    commands = [
        (d["metadata"]["labels"]["app.kubernetes.io/component"],
         d["spec"]["template"]["spec"]["containers"][0]["command"][2])
        for d in docs.values()
    ]  # fmt: skip
    last = run_in_fresh_clones(remote_project, commands, tmp_path)
    assert (last / "dvc.lock").read_text() == (trained_project / "dvc.lock").read_text()
    bundle, local = last / "models/bundle", trained_project / "models/bundle"
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    for rel in files:
        assert (bundle / rel).read_bytes() == (local / rel).read_bytes(), rel
    # a laptop gets the cluster's results from the remote, running nothing
    laptop = tmp_path / "laptop"
    run_tool("git", "clone", "-q", str(remote_project), str(laptop), cwd=tmp_path)
    proc = run_tool("dvc", "repro", "--pull", cwd=laptop)
    assert set(_ran(proc.stdout)) <= {"configs"}, proc.stdout
    metrics = json.loads((laptop / "metrics/evaluate.json").read_text())
    assert metrics == json.loads((trained_project / "metrics/evaluate.json").read_text())
