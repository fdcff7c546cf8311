"""`pipespec export`: each target's files pass their own tools, are stable text, and
`export --check` names the file that no longer matches the configuration."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from helpers import run_cli, run_tool

Tool = Callable[[str], str]


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)


def _dvc_remote(project: Path) -> None:
    """A committed DVC remote 'store' (as `dvc remote add -d store URL` writes it)."""
    (project / ".dvc").mkdir(exist_ok=True)
    (project / ".dvc/config").write_text(
        "[core]\n    remote = store\n['remote \"store\"']\n    url = /tmp/store\n"
    )


def test_github_workflow_passes_the_schema_and_zizmor(project: Path, tool: Tool) -> None:
    _dvc_remote(project)
    run_cli("export", "github-actions", cwd=project)
    path = project / ".github/workflows/pipespec.yml"
    schema = _run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                  str(path), cwd=project)  # fmt: skip
    assert schema.returncode == 0, schema.stdout + schema.stderr
    # pedantic: the strictest persona, so even an unexplained permission is a finding
    audit = _run(tool("zizmor"), "--offline", "--persona", "pedantic", str(path), cwd=project)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings" in audit.stdout, audit.stdout
    doc = yaml.safe_load(path.read_text())
    steps = doc["jobs"]["pipeline"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs[1:5] == [
        "pipespec compose --check",
        "dvc repro --pull --allow-missing",
        "dvc push",
        "pipespec stage gate",
    ]
    assert all("${{" not in r for r in runs), "event fields must reach scripts through env"
    assert all("@" in s["uses"] and len(s["uses"].split("@")[1]) == 40 for s in steps
               if "uses" in s)  # fmt: skip
    assert steps[0]["with"] == {"fetch-depth": 0, "persist-credentials": False}


def test_ci_group_options_reach_both_workflows(project: Path, tool: Tool) -> None:
    _dvc_remote(project)
    run_cli("compose", "ci.python=3.12", "ci.remote=store", "ci.cache=false",
            "ci.runner=ubuntu-24.04", cwd=project)  # fmt: skip
    run_cli("export", "github-actions", cwd=project)
    run_cli("export", "gitlab-ci", cwd=project)
    gitlab = project / ".gitlab-ci.yml"
    schema = _run(tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(gitlab),
                  cwd=project)  # fmt: skip
    assert schema.returncode == 0, schema.stdout + schema.stderr
    gh = yaml.safe_load((project / ".github/workflows/pipespec.yml").read_text())
    job = gh["jobs"]["pipeline"]
    assert job["runs-on"] == "ubuntu-24.04"
    assert not any("cache" in s.get("uses", "") for s in job["steps"])
    assert any(s.get("with", {}).get("python-version") == "3.12" for s in job["steps"])
    scripts = yaml.safe_load(gitlab.read_text())["pipespec"]["script"]
    assert "dvc remote default --local store" in scripts[2]
    assert scripts[3] == "dvc push -r store"
    assert "CI_MERGE_REQUEST_DIFF_BASE_SHA" in scripts[-1]


def test_kubernetes_manifests_load_as_client_models(project: Path) -> None:
    from kubernetes.client import ApiClient

    run_cli("compose", "deploy.version=1.4.0", "deploy.replicas=3", cwd=project)
    run_cli("export", "kubernetes", cwd=project)
    path = project / "deploy/kubernetes/pipespec.yaml"
    text = path.read_text()
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    client = ApiClient()
    models = {"Deployment": "V1Deployment", "Service": "V1Service",
              "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler"}  # fmt: skip
    for doc in docs:
        model = client._ApiClient__deserialize(doc, models[doc["kind"]])  # type: ignore[attr-defined]
        # the client drops keys it does not know: a round trip equal to the input has none
        assert client.sanitize_for_serialization(model) == doc, doc["kind"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/version"] == "1.4.0"
    deployment = docs[0]
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "pipespec-model:1.4.0"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert set(container["resources"]) == {"requests", "limits"}
    # stable text: exporting again writes the same bytes
    run_cli("export", "kubernetes", cwd=project)
    assert path.read_text() == text


def test_export_check_names_the_stale_file(project: Path) -> None:
    ok = run_cli("export", "--check", cwd=project)
    assert "nothing exported yet" in ok.stderr
    run_cli("export", "kubernetes", cwd=project)
    _dvc_remote(project)  # the DAG's tasks share artifacts through it
    run_cli("export", "airflow", "--group-by", "file", cwd=project)
    assert "2 exported file(s) up to date" in run_cli("export", "--check", cwd=project).stderr
    run_cli("compose", "deploy.replicas=4", cwd=project)
    stale = run_cli("export", "--check", cwd=project, check=False)
    assert stale.returncode == 3, stale.stderr
    assert "deploy/kubernetes/pipespec.yaml" in stale.stderr
    assert "dags/" not in stale.stderr  # the DAG does not read deploy.*
    assert "pipespec export kubernetes" in stale.stderr
    # re-exporting every recorded target (options kept) makes everything fresh again
    run_cli("export", cwd=project)
    run_cli("export", "--check", cwd=project)
    assert "task_id='train'" in (project / "dags/pipespec.py").read_text()  # group-by file kept
    (project / "dags/pipespec.py").unlink()
    missing = run_cli("export", "--check", cwd=project, check=False)
    assert missing.returncode == 3
    assert "dags/pipespec.py (missing)" in missing.stderr
    assert "pipespec export airflow --group-by file" in missing.stderr


def test_bad_export_input_is_named(project: Path) -> None:
    unknown = run_cli("export", "kubernets", cwd=project, check=False)
    assert unknown.returncode == 2
    assert "unknown export target 'kubernets'" in unknown.stderr
    assert "Did you mean 'kubernetes'" in unknown.stderr
    typo = run_cli("compose", "deploy.replica=3", cwd=project, check=False)
    assert typo.returncode == 2
    assert "deploy.replica" in typo.stderr
    run_cli("compose", "deploy.autoscaling.min_replicas=9", cwd=project)
    bounds = run_cli("export", "kubernetes", cwd=project, check=False)
    assert bounds.returncode == 2
    assert "deploy.autoscaling.min_replicas" in bounds.stderr
    assert not (project / "deploy").exists()
    nobundle = run_cli("export", "docker", cwd=project, check=False)
    assert nobundle.returncode == 7
    assert "no bundle at models/bundle" in nobundle.stderr


@pytest.mark.slow
def test_docker_and_alerts_record_the_bundle(bundled_project: Path, tool: Tool) -> None:
    import hashlib

    root = bundled_project
    run_cli("export", "docker", cwd=root)
    run_cli("export", "alerts", cwd=root)
    run_cli("export", "--check", cwd=root)  # what was just written is fresh
    dockerfile = root / "deploy/docker/Dockerfile"
    lint = _run(tool("hadolint"), str(dockerfile), cwd=root)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = dockerfile.read_text()
    sha = hashlib.sha256((root / "models/bundle/manifest.json").read_bytes()).hexdigest()
    assert f'dev.pipespec.bundle.sha256="{sha}"' in text
    assert "\nUSER 10001\n" in text
    assert "HEALTHCHECK" in text
    requirements = (root / "deploy/docker/requirements-serve.txt").read_text()
    for banned in ("hydra-core", "omegaconf", "dvc", "optuna", "dask", "scikit-learn"):
        assert f"\n{banned}==" not in requirements
    assert "\nlightgbm==" in requirements
    assert "\nfastapi==" in requirements
    rules = root / "deploy/prometheus/pipespec-alerts.yml"
    check = _run(tool("promtool"), "check", "rules", str(rules), cwd=root)
    assert check.returncode == 0, check.stdout + check.stderr
    # a new bundle makes both stale
    manifest = root / "models/bundle/manifest.json"
    manifest.write_bytes(manifest.read_bytes() + b"\n")
    stale = run_cli("export", "--check", cwd=root, check=False)
    assert stale.returncode == 3
    assert "deploy/docker/Dockerfile" in stale.stderr
    assert "deploy/prometheus/pipespec-alerts.yml" in stale.stderr


@pytest.mark.slow
def test_prediction_drift_alert_computes_the_monitors_psi(
    bundled_project: Path, tmp_path: Path, tool: Tool
) -> None:
    """promtool evaluates the exported rules on counters: the PSI it computes from the bins
    equals pipespec monitor's PSI, the drift alert fires on drifted predictions only, and the
    error-rate alert on 5xx answers."""
    import json

    import numpy as np

    from pipespec.bundle.profile import psi

    root = bundled_project
    run_cli("export", "alerts", cwd=root)
    rules_path = root / "deploy/prometheus/pipespec-alerts.yml"
    rules = yaml.safe_load(rules_path.read_text())
    alerts = {r["alert"]: r for r in rules["groups"][1]["rules"]}
    profile = json.loads((root / "models/bundle/profile.json").read_text())["prediction"]
    reference = np.asarray(profile["counts"], dtype="float64")
    bins = len(reference)
    drifted = np.full(bins, 2.0)
    drifted[0] = 40.0  # most predictions fall in the first bin
    steady = reference / reference.sum() * 100  # the training shares, 100 predictions a minute

    def series(bundle: str, per_minute: np.ndarray) -> list[dict[str, str]]:
        return [
            {"series": f'pipespec_prediction_bucket_total{{bin="{i}",bundle="{bundle}"}}',
             "values": f"0+{per_minute[i]:.6f}x40"}
            for i in range(bins)
        ]  # fmt: skip

    def fired(name: str, bundle: str) -> dict[str, object]:
        return {
            "exp_labels": {**alerts[name]["labels"], "bundle": bundle},
            "exp_annotations": alerts[name]["annotations"],
        }

    expected_psi = psi(reference, drifted)
    assert expected_psi is not None
    assert expected_psi > 0.2
    test = {
        "rule_files": [str(rules_path)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    *series("drifted", drifted),
                    *series("steady", steady),
                    {
                        "series": 'pipespec_requests_total{endpoint="/predict",status="200",'
                        'bundle="steady"}',
                        "values": "0+90x40",
                    },
                    {
                        "series": 'pipespec_requests_total{endpoint="/predict",status="500",'
                        'bundle="steady"}',
                        "values": "0+10x40",
                    },
                ],
                "promql_expr_test": [
                    {
                        # 1 when PromQL's PSI is within 1e-4 of the monitor's (shares are
                        # written with 6 decimals)
                        "expr": 'abs(pipespec:prediction_psi:window{bundle="drifted"}'
                        f" - {expected_psi!r}) < bool 0.0001",
                        "eval_time": "30m",
                        "exp_samples": [{"labels": '{bundle="drifted"}', "value": 1}],
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "PipespecPredictionDrift",
                        "exp_alerts": [fired("PipespecPredictionDrift", "drifted")],
                    },
                    {
                        "eval_time": "30m",
                        "alertname": "PipespecErrorRate",
                        "exp_alerts": [fired("PipespecErrorRate", "steady")],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "alerts-test.yml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = _run(tool("promtool"), "test", "rules", str(test_file), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_export_on_a_new_project_with_and_without_a_remote(new_project, tmp_path: Path) -> None:
    """`pipespec init` makes `main`; the workflow triggers on it, pins this pipespec, and
    without a DVC remote reproduces from DVC's cache with no pull or push."""
    from pipespec import __version__

    root = new_project()
    assert run_tool("git", "branch", "--show-current", cwd=root).stdout.strip() == "main"
    run_cli("export", "github-actions", cwd=root)
    doc = yaml.safe_load((root / ".github/workflows/pipespec.yml").read_text())
    assert doc["on"] == {"pull_request": {"branches": ["main"]}}
    runs = [s["run"] for s in doc["jobs"]["pipeline"]["steps"] if "run" in s]
    assert runs[0] == f"python -m pip install pipespec=={__version__}"
    assert "dvc repro" in runs
    assert not any("dvc push" in r or "--pull" in r for r in runs)
    # a named remote that .dvc/config does not have is refused, naming the key and the fix
    run_cli("compose", "ci.remote=store", cwd=root)
    refused = run_cli("export", "github-actions", cwd=root, check=False)
    assert refused.returncode == 2, refused.stderr
    assert "ci.remote: DVC remote 'store' is not in .dvc/config" in refused.stderr
    assert "dvc remote add store URL" in refused.stderr
    run_tool("dvc", "remote", "add", "store", str(tmp_path / "remote"), cwd=root)
    run_cli("export", "github-actions", cwd=root)
    doc = yaml.safe_load((root / ".github/workflows/pipespec.yml").read_text())
    runs = [s["run"] for s in doc["jobs"]["pipeline"]["steps"] if "run" in s]
    assert "dvc remote default --local store\ndvc repro --pull --allow-missing" in runs
    assert "dvc push -r store" in runs
