"""Shared pieces of the Kubernetes blocks: labels, the restricted security context, metadata.

Not a building block itself; every block file imports from here so each pod is hardened the
same way (Pod Security Standard `restricted`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi

PART_OF = "agent-infra"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
APP_UID = 10001
"""UID the agent_app containers run as (any non-zero UID works: the image's files are world-readable)."""

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


def label_value(value: str) -> str:
    """A string made into a valid label value (63 chars, alphanumeric at both ends)."""
    cleaned = _LABEL_VALUE.sub("-", value)[:63]
    return cleaned.strip("-_.")


def stack_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """The stack's tags as labels (Kubernetes resources have no `tags`)."""
    out = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}
    for key, value in tags.items():
        if re.fullmatch(r"([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?", key):
            out[key] = label_value(value)
    return out


def selector(instance: str, component: str) -> dict[str, str]:
    """The labels a Service, NetworkPolicy or PDB selects a workload's pods by."""
    return {INSTANCE: instance, COMPONENT: component}


def labels(base: Mapping[str, str], instance: str, component: str) -> dict[str, str]:
    return {**base, "app.kubernetes.io/name": component, **selector(instance, component)}


def metadata(name: str, namespace: str | pulumi.Output[str] | None, labels: Mapping[str, str],
             annotations: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def pod_security_context(uid: int = APP_UID, fs_group: int | None = None) -> dict[str, Any]:
    """Pod-level half of the restricted profile: non-root, RuntimeDefault seccomp."""
    context: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                               "seccompProfile": {"type": "RuntimeDefault"}}
    if fs_group is not None:
        context["fsGroup"] = fs_group
        context["fsGroupChangePolicy"] = "OnRootMismatch"
    return context


def container_security_context(uid: int = APP_UID) -> dict[str, Any]:
    """Container-level half: read-only root, no escalation, every capability dropped."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def scratch_volume(name: str = "tmp", size_mb: int = 256) -> dict[str, Any]:
    """A size-capped emptyDir, the writable place a read-only root filesystem needs."""
    return {"name": name, "emptyDir": {"sizeLimit": f"{size_mb}Mi"}}


def pull_policy(image: str) -> str:
    """`IfNotPresent` for a digest-pinned image (the bytes cannot change), `Always` for a tag: a
    tag can be re-pushed, so the node re-checks the registry and never runs a stale or planted copy."""
    return "IfNotPresent" if "@sha256:" in image else "Always"


def topology_spread(selector_labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Spread replicas across nodes and zones; `ScheduleAnyway` so a one-node cluster still runs them."""
    return [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": dict(selector_labels)}}
            for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")]


def str_transforms(transforms: Mapping[Any, Any]) -> dict[str, Any]:
    """Literal-keyed transform maps as the plain `dict[str, Transform]` ChildFactory takes."""
    return {str(role): transform for role, transform in transforms.items()}


def single_replica_statefulset_spec(
    name: str,
    selector_labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    uid: int,
    container: Mapping[str, Any],
    volumes: list[Any],
    claim_name: str,
    storage_gb: int,
    storage_class: str | None,
    grace_seconds: int = 30,
) -> dict[str, Any]:
    """The spec our data services share: one replica, a retained PVC, restricted pod defaults.

    Claims are retained on delete and scale-down so `pulumi destroy` never takes the data with it.
    """
    claim: dict[str, Any] = {"metadata": {"name": claim_name, "labels": dict(pod_labels)},
                             "spec": {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": f"{storage_gb}Gi"}}}}
    if storage_class:
        claim["spec"]["storageClassName"] = storage_class
    return {"serviceName": name, "replicas": 1, "selector": {"matchLabels": dict(selector_labels)},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {"metadata": {"labels": dict(pod_labels)}, "spec": {
                "automountServiceAccountToken": False, "enableServiceLinks": False,
                "securityContext": pod_security_context(uid, fs_group=uid),
                "terminationGracePeriodSeconds": grace_seconds,
                "containers": [dict(container)], "volumes": volumes}},
            "volumeClaimTemplates": [claim]}
