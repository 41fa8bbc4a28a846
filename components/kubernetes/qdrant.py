"""`Qdrant`: a vector database as a one-pod StatefulSet (vectors.backend: qdrant)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import (
    container_security_context,
    labels,
    metadata,
    pull_policy,
    scratch_volume,
    selector,
    single_replica_statefulset_spec,
    str_transforms,
)

QDRANT_IMAGE = "qdrant/qdrant:v1.13.4-unprivileged"
"""The `-unprivileged` variant runs as UID 1000 (restricted Pod Security Standard)."""
QDRANT_UID = 1000
QDRANT_HTTP_PORT = 6333
QDRANT_GRPC_PORT = 6334


class QdrantArgs(ComponentArgs):
    """Qdrant with its storage on a PVC. Reachable only from the API and workers (NetworkPolicy).
    Cost: the PVC plus 250m CPU / 512Mi reserved."""

    namespace: str | pulumi.Output[str]
    """Namespace to run in."""
    instance: str
    """`app.kubernetes.io/instance` label (the topology's name)."""
    api_key_secret: str | None = None
    """Secret holding an API key clients must send. None: network isolation only."""
    api_key_key: str = "api-key"
    """Key in `api_key_secret`."""
    image: str = QDRANT_IMAGE
    """Pinned Qdrant image. A digest (`qdrant/qdrant@sha256:...`) is pulled `IfNotPresent`, a tag `Always`."""
    storage_gb: int = Field(10, ge=1, le=10_000)
    """PVC size for collections."""
    storage_class: str | None = None
    """StorageClass. None: the cluster default."""
    labels: dict[str, str] = {}
    """Labels on every object."""
    transforms: Mapping[Literal["service", "statefulset"], Transform] = {}
    """Escape hatch per child role (`service`, `statefulset`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Qdrant(pulumi.ComponentResource):
    """StatefulSet + headless Service, both named like the component."""

    host: str
    """In-cluster DNS name within the namespace."""
    port: int
    """HTTP port (6333); gRPC is 6334."""
    selector: dict[str, str]
    """Labels of the Qdrant pod (for NetworkPolicies)."""

    def __init__(self, name: str, args: QdrantArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(QdrantArgs, args, "qdrant")
        super().__init__("agent-infra:kubernetes:Qdrant", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.selector = selector(args.instance, "qdrant")
        pod_labels = labels(args.labels, args.instance, "qdrant")
        self.service = child("service", k8s.core.v1.Service, name, metadata=metadata(name, args.namespace, pod_labels),
                             spec={"clusterIP": "None", "selector": self.selector,
                                   "ports": [{"name": "http", "port": QDRANT_HTTP_PORT, "targetPort": "http"},
                                             {"name": "grpc", "port": QDRANT_GRPC_PORT, "targetPort": "grpc"}]})
        env: list[dict[str, Any]] = [{"name": "QDRANT__TELEMETRY_DISABLED", "value": "true"}]
        if args.api_key_secret:
            env.append({"name": "QDRANT__SERVICE__API_KEY", "valueFrom": {"secretKeyRef": {
                "name": args.api_key_secret, "key": args.api_key_key}}})
        container = {
            "name": "qdrant", "image": args.image, "imagePullPolicy": pull_policy(args.image), "env": env,
            "ports": [{"name": "http", "containerPort": QDRANT_HTTP_PORT, "protocol": "TCP"},
                      {"name": "grpc", "containerPort": QDRANT_GRPC_PORT, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "128Mi"},
                          "limits": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "2Gi"}},
            "securityContext": container_security_context(QDRANT_UID),
            "startupProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 5, "failureThreshold": 24},
            "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 15, "failureThreshold": 4},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10,
                               "failureThreshold": 3},
            "volumeMounts": [{"name": "storage", "mountPath": "/qdrant/storage"},
                             {"name": "snapshots", "mountPath": "/qdrant/snapshots"},
                             {"name": "tmp", "mountPath": "/tmp"}],
        }
        self.statefulset = child(
            "statefulset", k8s.apps.v1.StatefulSet, name, metadata=metadata(name, args.namespace, pod_labels),
            spec=single_replica_statefulset_spec(
                name, self.selector, pod_labels, QDRANT_UID, container,
                [scratch_volume("snapshots", 1024), scratch_volume("tmp", 64)],
                "storage", args.storage_gb, args.storage_class))
        self.host, self.port = name, QDRANT_HTTP_PORT
        self.register_outputs({"host": name, "port": QDRANT_HTTP_PORT})
