"""Checks of the ``kubernetes`` group's values and ``orchestrator.image`` at composition.

They reach Kubernetes manifests (``pipespec export kubernetes-training``) and Airflow's pod
specs, so a name must be what the API server accepts (a DNS-1123 label or subdomain), a
quantity what it parses, and an image reference a single token: a value that would be
refused by ``kubectl apply`` hours later is refused by ``pipespec compose`` instead. The
rules join ``value_checks.RULES``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pipespec.core.value_rule import KeyPath, Problem, Rule

# Kubernetes' own grammars (k8s.io/apimachinery validation and resource.Quantity)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$")
# registry/path:tag@digest, without spaces, quotes or shell characters
IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


def _name(kind: str, pattern: re.Pattern[str], limit: int) -> Rule:
    def check(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None:
                continue
            text = str(item)
            if len(text) > limit or not pattern.match(text):
                yield Problem(
                    (path,),
                    f"{text!r} is not a Kubernetes {kind}",
                    hint=f"Use lower-case letters, digits and '-' (at most {limit} characters).",
                )

    return check


def _image(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if value is not None and not IMAGE.match(str(value)):
        yield Problem(
            (path,),
            f"{str(value)!r} is not an image reference",
            hint="Write registry/name:tag (or @sha256:...), without spaces or quotes.",
        )


def _workdir(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    text = str(value)
    if not text.startswith("/") or not IMAGE.match(text.lstrip("/") or "x") or ".." in text:
        yield Problem(
            (path,),
            f"{text!r} is not an absolute path inside the image",
            hint="Give the checkout's folder in the image, such as /project.",
        )


def _pull_policy(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if value not in PULL_POLICIES:
        yield Problem(
            (path,),
            f"{value!r} is not an image pull policy",
            hint=f"Use one of {', '.join(PULL_POLICIES)}.",
        )


def _resources(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if not isinstance(value, Mapping):
        return
    for key, quantity in value.items():
        if not QUANTITY.match(str(quantity)):
            yield Problem(
                ((*path, str(key)),),
                f"{str(quantity)!r} is not a Kubernetes quantity",
                hint="Write CPU as 500m or 2, memory as 512Mi or 4Gi.",
            )


def _non_negative(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        yield Problem((path,), f"must be a whole number >= 0, not {value!r}")


RULES: dict[str, Rule] = {
    "kubernetes.prefix": _name("name prefix (DNS-1123 label)", DNS_LABEL, 40),
    "kubernetes.image": _image,
    "kubernetes.image_pull_policy": _pull_policy,
    "kubernetes.workdir": _workdir,
    "kubernetes.namespace": _name("namespace name (DNS-1123 label)", DNS_LABEL, 63),
    "kubernetes.service_account": _name("service account name", DNS_SUBDOMAIN, 253),
    "kubernetes.secrets": _name("Secret name", DNS_SUBDOMAIN, 253),
    "kubernetes.backoff_limit": _non_negative,
    "kubernetes.ttl_seconds": _non_negative,
    "kubernetes.resources": _resources,
    "orchestrator.image": _image,
}
