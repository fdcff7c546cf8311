"""``pipespec export kubernetes-training``: the pipeline as Kubernetes Jobs, one per stage.

Files under ``deploy/kubernetes/training/``: one ``batch/v1`` Job per training stage, numbered
in dependency order (``01-load.yaml``, ...), ``run.sh`` that applies them in that order and
waits for each to succeed, and, with ``compute=dask``, a ``DaskCluster`` (dask-kubernetes
operator) or, with ``compute=spark``, a ``SparkApplication`` (spark-operator ``v1beta2``)
sized from the ``compute`` group. Each Job's pod runs its stage in the image's own checkout
of the project (``kubernetes.image``, ``kubernetes.workdir``) and shares artifacts with the
others only through the DVC remote (``remote_run``): no volume, no shared checkout.
"""

from __future__ import annotations

import shlex
from typing import Any

from pipespec import __version__
from pipespec.core.errors import ConfigError
from pipespec.core.kubernetes_values import DNS_LABEL
from pipespec.core.value_checks import byte_size
from pipespec.engine.export.base import ExportContext, dump_yaml, header
from pipespec.engine.export.remote_run import check_remote, script
from pipespec.engine.pipeline import Stage

FOLDER = "deploy/kubernetes/training"
RUNNER = f"{FOLDER}/run.sh"
MONITOR_KIND = "monitor"  # a monitoring pipeline runs on a schedule, not as training
DASK_ENV = "PIPESPEC_DASK_ADDRESS"  # the stages' Dask scheduler (stages/cluster.py reads it)
DASK_PORT = 8786
DASK_DASHBOARD = 8787
SPARK_VERSION = "4.0.0"  # the Spark of the image (pipespec[spark] installs pyspark 4)
PART = "pipespec.dev/part"


def training_stages(ctx: ExportContext) -> list[Stage]:
    """The stages of the pipelines/ files that hold no monitor stage, in dependency order."""
    monitoring = {s.source for s in ctx.pipeline.stages if s.kind.name == MONITOR_KIND}
    return [s for s in ctx.pipeline.stages if s.source not in monitoring]


def _name(prefix: str, part: str) -> str:
    name = f"{prefix}-{part.replace('_', '-').lower()}"
    if len(name) > 63 or not DNS_LABEL.match(name):
        raise ConfigError(
            f"kubernetes.prefix + stage '{part}' gives '{name}', not a Kubernetes name "
            "(a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters)",
            hint="Shorten kubernetes.prefix or rename the stage in pipelines/.",
        )
    return name


def _labels(k8s: dict[str, Any], component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"{k8s['prefix']}-training",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "pipespec",
    }


def _metadata(k8s: dict[str, Any], name: str, component: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if k8s.get("namespace"):
        meta["namespace"] = str(k8s["namespace"])
    meta["labels"] = _labels(k8s, component)
    meta["annotations"] = {"pipespec.version": __version__}
    return meta


def _env_from(k8s: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"secretRef": {"name": str(s)}} for s in k8s.get("secrets") or []]


def _resources(res: dict[str, Any]) -> dict[str, Any]:
    return {
        "requests": {"cpu": str(res["cpu_request"]), "memory": str(res["memory_request"])},
        "limits": {"cpu": str(res["cpu_limit"]), "memory": str(res["memory_limit"])},
    }


SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def dask_address(k8s: dict[str, Any]) -> str:
    """The scheduler Service the dask-kubernetes operator makes for the DaskCluster."""
    host = f"{k8s['prefix']}-dask-scheduler"
    if k8s.get("namespace"):
        host += f".{k8s['namespace']}"
    return f"tcp://{host}:{DASK_PORT}"


def job(ctx: ExportContext, stage: Stage, after: list[str]) -> dict[str, Any]:
    """The Job that runs ``stage`` (its upstream stages restored from the run cache)."""
    k8s = ctx.group("kubernetes")
    name = _name(str(k8s["prefix"]), stage.name)
    container: dict[str, Any] = {
        "name": "stage",
        "image": str(k8s["image"]),
        "imagePullPolicy": str(k8s["image_pull_policy"]),
        "workingDir": str(k8s["workdir"]),
        "command": ["bash", "-c", script([stage.name], k8s.get("remote"))],
    }
    compute = ctx.group("compute")
    if compute.get("backend") == "dask" and not compute.get("address"):
        container["env"] = [{"name": DASK_ENV, "value": dask_address(k8s)}]
    if k8s.get("secrets"):
        container["envFrom"] = _env_from(k8s)
    container["resources"] = _resources(k8s["resources"])
    container["securityContext"] = SECURITY
    pod: dict[str, Any] = {"restartPolicy": "Never"}
    if k8s.get("service_account"):
        pod["serviceAccountName"] = str(k8s["service_account"])
    pod["automountServiceAccountToken"] = False
    pod["containers"] = [container]
    meta = _metadata(k8s, name, stage.name)
    meta["annotations"]["pipespec.dev/after"] = ",".join(after)
    if not after:
        del meta["annotations"]["pipespec.dev/after"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": int(k8s["backoff_limit"]),
            "ttlSecondsAfterFinished": int(k8s["ttl_seconds"]),
            "template": {"metadata": {"labels": _labels(k8s, stage.name)}, "spec": pod},
        },
    }


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "protocol": "TCP", "port": port, "targetPort": name}


def dask_cluster(ctx: ExportContext) -> dict[str, Any]:
    """A DaskCluster of ``compute.workers`` workers, each ``compute.threads_per_worker``
    threads and ``compute.memory_limit`` of memory, running the project's image."""
    k8s, compute = ctx.group("kubernetes"), ctx.group("compute")
    name = _name(str(k8s["prefix"]), "dask")
    threads = int(compute["threads_per_worker"])
    memory = str(byte_size(compute["memory_limit"]))
    common: dict[str, Any] = {
        "image": str(k8s["image"]),
        "imagePullPolicy": str(k8s["image_pull_policy"]),
        "workingDir": str(k8s["workdir"]),
    }
    if k8s.get("secrets"):
        common["envFrom"] = _env_from(k8s)
    worker = {
        "name": "worker",
        **common,
        "args": [
            "dask",
            "worker",
            "--name",
            "$(DASK_WORKER_NAME)",
            "--nthreads",
            str(threads),
            "--memory-limit",
            memory,
            "--dashboard",
            "--dashboard-address",
            "8788",
        ],
        "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": str(threads), "memory": memory},
            "limits": {"cpu": str(threads), "memory": memory},
        },
    }
    scheduler = {
        "name": "scheduler",
        **common,
        "args": ["dask", "scheduler"],
        "ports": [
            {"name": "tcp-comm", "containerPort": DASK_PORT, "protocol": "TCP"},
            {"name": "http-dashboard", "containerPort": DASK_DASHBOARD, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"port": "http-dashboard", "path": "/health"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        },
    }
    pod: dict[str, Any] = {}
    if k8s.get("service_account"):
        pod["serviceAccountName"] = str(k8s["service_account"])
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": _metadata(k8s, name, "dask"),
        "spec": {
            "worker": {
                "replicas": int(compute["workers"]),
                "spec": {**pod, "containers": [worker]},
            },
            "scheduler": {
                "spec": {**pod, "containers": [scheduler]},
                "service": {
                    "type": "ClusterIP",
                    "selector": {
                        "dask.org/cluster-name": name,
                        "dask.org/component": "scheduler",
                    },
                    "ports": [
                        _port("tcp-comm", DASK_PORT),
                        _port("http-dashboard", DASK_DASHBOARD),
                    ],
                },
            },
        },
    }


def _spark_memory(value: Any) -> str:
    """Spark's memory notation (``4g``, ``512m``) from a size such as ``4GiB``."""
    size = byte_size(value) or 0
    mib = max(1, size // 2**20)
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"


def spark_application(ctx: ExportContext) -> dict[str, Any]:
    """A SparkApplication whose driver runs the training stages in order (each through the
    DVC remote, as the Jobs do), with ``compute``'s executors and memory."""
    k8s, compute = ctx.group("kubernetes"), ctx.group("compute")
    name = _name(str(k8s["prefix"]), "spark")
    executors = int(compute.get("executors") or compute.get("workers") or 2)
    cores = int(compute.get("executor_cores") or compute.get("threads_per_worker") or 1)
    memory = _spark_memory(compute.get("memory") or compute.get("memory_limit") or "4GiB")
    res = k8s["resources"]
    driver: dict[str, Any] = {
        "cores": 1,
        "coreLimit": str(res["cpu_limit"]),
        "memory": _spark_memory(str(res["memory_request"]).replace("i", "iB")),
    }
    if k8s.get("service_account"):
        driver["serviceAccount"] = str(k8s["service_account"])
    if k8s.get("secrets"):
        driver["envFrom"] = _env_from(k8s)
    executor: dict[str, Any] = {"instances": executors, "cores": cores, "memory": memory}
    if k8s.get("secrets"):
        executor["envFrom"] = _env_from(k8s)
    stages = [s.name for s in training_stages(ctx)]
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": _metadata(k8s, name, "spark"),
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": str(k8s["image"]),
            "imagePullPolicy": str(k8s["image_pull_policy"]),
            "mainApplicationFile": f"local://{k8s['workdir']}/{FOLDER}/spark_driver.py",
            "arguments": [script(stages, k8s.get("remote"))],
            "sparkVersion": SPARK_VERSION,
            "restartPolicy": {"type": "Never"},
            "driver": driver,
            "executor": executor,
        },
    }


SPARK_DRIVER = '''\
"""The SparkApplication's driver: run the training stages' script (its one argument) in the
image's checkout. Each stage's Spark session joins this application's executors."""

import subprocess
import sys

sys.exit(subprocess.run(["bash", "-c", sys.argv[1]], check=False).returncode)
'''


WAIT_FOR = """\
wait_for() { # FILE: until its Job is Complete; exit when it Failed
  while :; do
    state=$(kubectl get -f "$1" -o 'jsonpath={.status.conditions[*].type}')
    case " $state " in
      *" Complete "*) return 0 ;;
      *" Failed "*) echo "$1: the Job failed (kubectl describe -f $1)" >&2; exit 1 ;;
    esac
    sleep 10
  done
}"""


def _runner(files: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "#!/bin/sh",
        header("kubernetes-training").rstrip("\n"),
        "# Apply each stage's Job in dependency order and wait for it; stop at the first failure.",
        "set -eu",
        'cd "$(dirname "$0")"',
        "",
        *WAIT_FOR.splitlines(),
        "",
    ]
    for rel, doc in files:
        base = shlex.quote(rel.rsplit("/", 1)[-1])
        if doc["kind"] == "Job":  # a Job's pod template cannot change: replace the last run's
            lines.append(f"kubectl delete --ignore-not-found -f {base}")
        lines.append(f"kubectl apply -f {base}")
        if doc["kind"] == "Job":
            lines.append(f"wait_for {base}")
        elif doc["kind"] == "DaskCluster":
            lines.append(
                f"kubectl wait --for=jsonpath='{{.status.phase}}'=Running --timeout=15m -f {base}"
            )
        elif doc["kind"] == "SparkApplication":
            lines.append(f"echo 'the SparkApplication runs the stages: kubectl get -f {base}'")
    dask = [rel for rel, doc in files if doc["kind"] == "DaskCluster"]
    for rel in dask:
        lines.append(f"kubectl delete -f {shlex.quote(rel.rsplit('/', 1)[-1])}")
    return "\n".join(lines) + "\n"


def documents(ctx: ExportContext) -> list[tuple[str, dict[str, Any]]]:
    """(file, manifest) in the order they are applied."""
    stages = training_stages(ctx)
    if not stages:
        raise ConfigError("no training stage to export: pipelines/ holds only monitoring")
    k8s = ctx.group("kubernetes")
    check_remote(ctx.project, k8s.get("remote"), "kubernetes.remote")
    backend = ctx.group("compute").get("backend")
    out: list[tuple[str, dict[str, Any]]] = []
    if backend == "spark":
        return [(f"{FOLDER}/00-spark.yaml", spark_application(ctx))]
    if backend == "dask" and not ctx.group("compute").get("address"):
        out.append((f"{FOLDER}/00-dask-cluster.yaml", dask_cluster(ctx)))
    width = max(2, len(str(len(stages))))
    for i, stage in enumerate(stages, start=1):
        rel = f"{FOLDER}/{i:0{width}d}-{stage.name.replace('_', '-').lower()}.yaml"
        out.append((rel, job(ctx, stage, list(stage.upstream))))
    return out


def export(ctx: ExportContext) -> dict[str, str]:
    docs = documents(ctx)
    files = {rel: header("kubernetes-training") + dump_yaml(doc) for rel, doc in docs}
    if docs[0][1]["kind"] == "SparkApplication":
        files[f"{FOLDER}/spark_driver.py"] = SPARK_DRIVER
    files[RUNNER] = _runner(docs)
    return files
