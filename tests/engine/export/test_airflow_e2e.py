"""`pipespec export airflow` with real Airflow 3, in its own virtual environment as a user
would install it beside their project: the DAG files import into a DagBag, the task graph is
the pipeline's, and `airflow dags test` runs the example pipeline through DVC end to end."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from helpers import BIN, SMALL, commit_all, read_yaml, run_cli, run_tool

pytestmark = pytest.mark.slow
MONITOR_PIPELINE = """\
stages:
  monitor:
    kind: monitor
    inputs:
      bundle: package.bundle
      current: data/current.parquet
"""
DAGBAG = """\
import json, sys
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "schedule": str(dag.schedule),
            "retries": dag.default_args.get("retries"),
            "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
            "operators": {t.task_id: type(t).__name__ for t in dag.tasks},
            "commands": {
                t.task_id: getattr(t, "bash_command", None) or t.arguments[0] for t in dag.tasks
            },
            "images": sorted({str(getattr(t, "image", None)) for t in dag.tasks}),
        }
        for dag_id, dag in bag.dags.items()
    },
}))
"""


def _airflow_env(home: Path, dags: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        # importing the Kubernetes provider took over the default 30 s on a loaded machine
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        # the project's pipespec and dvc, as on a worker where the project is installed
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def test_airflow_runs_the_exported_dags(airflow_venv: Path, new_project, tmp_path: Path) -> None:
    root = new_project()
    (root / "pipelines/monitor.yaml").write_text(MONITOR_PIPELINE)
    remote = tmp_path / "remote"
    run_tool("dvc", "remote", "add", "-d", "store", str(remote), cwd=root)
    run_cli("compose", *SMALL, "orchestrator.retries=0", cwd=root)
    run_cli("export", "airflow", cwd=root)
    commit_all(root, "project with its DAGs")
    dags = root / "dags"
    assert sorted(p.name for p in dags.glob("*.py")) == ["pipespec.py", "pipespec_monitor.py"]
    env = _airflow_env(tmp_path / "airflow-home", dags)
    python = str(airflow_venv / "bin/python")

    bag = subprocess.run([python, "-c", DAGBAG, str(dags)], env=env, capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert bag.returncode == 0, bag.stderr
    found = json.loads(bag.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    from pipespec.engine.pipeline import load_pipeline
    from pipespec.engine.project import Project

    pipeline = load_pipeline(Project(root), read_yaml(root / "params.yaml"))
    training = [s for s in pipeline.stages if s.source == "pipelines/train.yaml"]
    expected = {s.name: sorted(s.upstream or ["configs"]) for s in training}
    expected["configs"] = []
    assert found["dags"]["pipespec"]["tasks"] == expected
    assert found["dags"]["pipespec"]["retries"] == 0
    # the monitoring DAG: scheduled, its one task waits for nothing (it pulls the bundle)
    assert found["dags"]["pipespec_monitor"]["tasks"] == {"monitor": []}
    assert "@daily" in found["dags"]["pipespec_monitor"]["schedule"]

    airflow = str(airflow_venv / "bin/airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    run = subprocess.run([airflow, "dags", "test", "pipespec"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert (root / "models/bundle/manifest.json").is_file()
    lock = read_yaml(root / "dvc.lock")["stages"]
    assert {s.name for s in training} <= set(lock)
    assert any(remote.rglob("*")), "the tasks pushed nothing to the DVC remote"
    status = run_tool("dvc", "status", *(s.name for s in training), cwd=root)
    assert "up to date" in status.stdout, status.stdout

    # drifted current data: the monitoring DAG's task fails with pipespec's drift exit (8)
    frame = pd.read_parquet(root / "data/load/data.parquet")
    for column in frame.select_dtypes("number").columns:
        frame[column] = frame[column] * 10 + 100
    frame.to_parquet(root / "data/current.parquet")
    drift = subprocess.run([airflow, "dags", "test", "pipespec_monitor"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=False)  # fmt: skip
    logs = drift.stdout + drift.stderr
    assert "exit code 8" in logs, logs[-4000:]
    assert "drift" in logs


@pytest.mark.timeout(2400)  # the provider's install, then nine tasks in fresh clones
def test_pod_tasks_import_and_run_each_in_a_fresh_clone(
    airflow_venv: Path, new_project, trained_project: Path, tmp_path: Path
) -> None:
    """With orchestrator.image every task is a KubernetesPodOperator; run in order, each
    task's own command in a fresh clone (its pod) reproduces the local run byte for byte."""
    from test_kubernetes_training import run_in_fresh_clones

    root = new_project()
    run_tool("dvc", "remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=root)
    run_cli("compose", *SMALL, "orchestrator.image=registry.example/proj:1", cwd=root)
    run_cli("export", "airflow", cwd=root)
    commit_all(root, "project with its pod DAG")
    env = _airflow_env(tmp_path / "airflow-home", root / "dags")
    bag = subprocess.run([str(airflow_venv / "bin/python"), "-c", DAGBAG, str(root / "dags")],
                         env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert bag.returncode == 0, bag.stderr
    found = json.loads(bag.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    dag = found["dags"]["pipespec"]
    assert set(dag["operators"].values()) == {"KubernetesPodOperator"}
    assert dag["images"] == ["registry.example/proj:1"]
    commands = []
    for task in dag["tasks"]:  # the DagBag lists them in dependency order
        cd, _, command = dag["commands"][task].partition("\n")
        assert cd == "cd /project"  # kubernetes.workdir: the checkout in the image
        commands.append((task, command))
    last = run_in_fresh_clones(root, commands, tmp_path)
    # every stage's lock entry is the local run's, but the `configs` check's: its deps hold
    # params.yaml, which here also holds orchestrator.image
    lock, local = read_yaml(last / "dvc.lock"), read_yaml(trained_project / "dvc.lock")
    assert list(lock["stages"]) == list(local["stages"])
    for stage in set(local["stages"]) - {"configs"}:
        assert lock["stages"][stage] == local["stages"][stage], stage
    for path in sorted((trained_project / "models/bundle").rglob("*")):
        if path.is_file():
            rel = path.relative_to(trained_project)
            assert (last / rel).read_bytes() == path.read_bytes(), rel
