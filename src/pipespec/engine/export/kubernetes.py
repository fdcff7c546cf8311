"""``pipespec export kubernetes``: a Deployment, a Service and a HorizontalPodAutoscaler.

One file, ``deploy/kubernetes/pipespec.yaml``, three documents, all labelled with the app
name and ``deploy.version``. The container runs the image ``pipespec export docker`` builds;
probes ask ``/health``.
"""

from __future__ import annotations

from typing import Any

from pipespec import __version__
from pipespec.core.errors import ConfigError
from pipespec.engine.export.base import ExportContext, dump_yaml, header

PATH = "deploy/kubernetes/pipespec.yaml"
APP = "app.kubernetes.io/name"
VERSION = "app.kubernetes.io/version"


def manifests(ctx: ExportContext) -> list[dict[str, Any]]:
    """The Deployment, Service and HorizontalPodAutoscaler documents."""
    deploy = ctx.group("deploy")
    name = str(deploy["image"]).rsplit("/", 1)[-1]
    version = str(deploy["version"])
    port = int(deploy["port"])
    labels = {APP: name, VERSION: version, "app.kubernetes.io/managed-by": "pipespec"}
    selector = {APP: name}
    res = deploy["resources"]
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": "serve",
        "image": f"{deploy['image']}:{version}",
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {**probe, "initialDelaySeconds": 5},
        "livenessProbe": {**probe, "initialDelaySeconds": 15, "failureThreshold": 3},
        "resources": {
            "requests": {"cpu": str(res["cpu_request"]), "memory": str(res["memory_request"])},
            "limits": {"cpu": str(res["cpu_limit"]), "memory": str(res["memory_limit"])},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    meta = {"name": name, "labels": labels, "annotations": {"pipespec.version": __version__}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": int(deploy["replicas"]),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"automountServiceAccountToken": False, "containers": [container]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }
    scaling = deploy["autoscaling"]
    if not 1 <= int(scaling["min_replicas"]) <= int(scaling["max_replicas"]):
        raise ConfigError(
            "deploy.autoscaling.min_replicas must be at least 1 and at most "
            f"deploy.autoscaling.max_replicas (got {scaling['min_replicas']} and "
            f"{scaling['max_replicas']})"
        )
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": int(scaling["min_replicas"]),
            "maxReplicas": int(scaling["max_replicas"]),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": int(scaling["cpu_utilization"]),
                        },
                    },
                }
            ],
        },
    }
    return [deployment, service, hpa]


def export(ctx: ExportContext) -> dict[str, str]:
    body = "---\n".join(dump_yaml(doc) for doc in manifests(ctx))
    return {PATH: header("kubernetes") + body}
