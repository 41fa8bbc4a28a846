"""`Workload`: a hardened Deployment running the agent_app image (the API or the workers)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ..errors import ConfigError
from ._common import (
    APP_UID,
    container_security_context,
    labels,
    metadata,
    pod_security_context,
    pull_policy,
    scratch_volume,
    selector,
    str_transforms,
    topology_spread,
)


class WorkloadArgs(ComponentArgs):
    """One Deployment of the agent_app image. Cost: the requested CPU and memory times replicas."""

    namespace: str | pulumi.Output[str]
    """Namespace to run in."""
    instance: str
    """`app.kubernetes.io/instance` label shared by the deployment's parts (the topology's name)."""
    component: Literal["api", "worker"]
    """`app.kubernetes.io/component` label: what Services, NetworkPolicies and PDBs select."""
    image: str | pulumi.Output[str]
    """Image reference, pinned by digest or a non-latest tag."""
    command: list[str]
    """Entry point, e.g. `["agent-app", "serve", "--host", "0.0.0.0"]` or `["agent-app", "worker"]`."""
    port: int | None = Field(8000, ge=1024, le=65_535)
    """Container port named `port_name` serving GET /healthz and /readyz (and, for the API, the API).
    None: no port, probes use `health_command`."""
    port_name: Literal["http", "health"] = "http"
    """Name of that port: `http` for the API (what the Service targets), `health` for the worker's
    health endpoint (`agent-app worker --health-port`, probes only)."""
    health_command: list[str] | None = None
    """Exec probe for processes without an HTTP port (the worker): exit 0 when healthy. Used for
    startup and readiness."""
    liveness_command: list[str] | None = None
    """Exec liveness probe for processes without an HTTP port (checked every 30 s, 10 failures
    restart the pod). Default: `health_command`."""
    liveness_path: str = "/healthz"
    """Liveness probe path: the process is alive (restart when it is not)."""
    readiness_path: str = "/readyz"
    """Readiness probe path: dependencies reachable (taken out of Service endpoints when not)."""
    startup_seconds: int = Field(120, ge=10, le=900)
    """How long a new pod may take to become live before the kubelet restarts it."""
    config_map: str | None = None
    """ConfigMap whose keys all become env vars (`envFrom`)."""
    env: list[dict[str, Any]] = []
    """Explicit `env` entries, in order (secretKeyRef entries first so later `$(VAR)` values can use them)."""
    volumes: list[dict[str, Any]] = []
    """Extra pod volumes (the app's secret files)."""
    volume_mounts: list[dict[str, Any]] = []
    """Extra container mounts for `volumes`."""
    replicas: int | None = Field(None, ge=0, le=1_000)
    """Fixed replica count. None: left to the autoscaler (HPA/KEDA) that owns the deployment."""
    cpu_request: str = "250m"
    """CPU the scheduler reserves per pod (the HPA's 100%)."""
    memory_request: str = "512Mi"
    """Memory reserved per pod."""
    cpu_limit: str = "1000m"
    """CPU ceiling per pod (throttled above it)."""
    memory_limit: str = "2Gi"
    """Memory ceiling per pod (OOM-killed above it; the queue redelivers the task)."""
    service_account: str
    """Service account name (no token is mounted)."""
    termination_grace_period_seconds: int = Field(60, ge=1, le=86_400)
    """SIGTERM to SIGKILL. Workers need the longest run plus a margin so scale-in never kills a step."""
    image_pull_secret: str | None = None
    """dockerconfigjson Secret for a private registry."""
    annotations: dict[str, str] = {}
    """Pod template annotations (a change rolls the pods)."""
    labels: dict[str, str] = {}
    """Extra labels on the Deployment and its pods (the stack's tags)."""
    transforms: Mapping[Literal["deployment"], Transform] = {}
    """Escape hatch per child role (`deployment`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Workload(pulumi.ComponentResource):
    """A Deployment that satisfies the restricted Pod Security Standard, with liveness, readiness
    and startup probes, requests and limits, zone/node spread and zero-downtime rollouts."""

    name: str
    """Deployment name (the component name), for autoscalers' `scaleTargetRef`."""
    selector: dict[str, str]
    """Labels selecting this workload's pods."""
    container: str
    """Name of the app container (the component: `api` or `worker`)."""

    def __init__(self, name: str, args: WorkloadArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(WorkloadArgs, args, "workload")
        if args.port is None and not args.health_command:
            raise ConfigError(f"{name}: a workload without a port needs health_command for its probes")
        super().__init__("agent-infra:kubernetes:Workload", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.name, self.container = name, args.component
        self.selector = selector(args.instance, args.component)
        pod_labels = labels(args.labels, args.instance, args.component)

        def http_probe(path: str, period: int, failures: int) -> dict[str, Any]:
            if args.port is None or args.health_command:
                return {"exec": {"command": list(args.health_command or [])}, "periodSeconds": max(period, 10),
                        "timeoutSeconds": 5, "failureThreshold": failures}
            return {"httpGet": {"path": path, "port": args.port_name}, "periodSeconds": period,
                    "timeoutSeconds": 3, "failureThreshold": failures}

        container: dict[str, Any] = {
            "name": args.component,
            "image": args.image,
            "imagePullPolicy": pull_policy(args.image) if isinstance(args.image, str)
            else pulumi.Output.from_input(args.image).apply(pull_policy),
            "command": list(args.command),
            "env": [*args.env, {"name": "TMPDIR", "value": "/tmp"}],
            "resources": {"requests": {"cpu": args.cpu_request, "memory": args.memory_request,
                                       "ephemeral-storage": "128Mi"},
                          "limits": {"cpu": args.cpu_limit, "memory": args.memory_limit, "ephemeral-storage": "1Gi"}},
            "securityContext": container_security_context(APP_UID),
            "startupProbe": http_probe(args.liveness_path, 5, max(2, args.startup_seconds // 5)),
            "livenessProbe": http_probe(args.liveness_path, 15, 4) if args.port else
            {"exec": {"command": list(args.liveness_command or args.health_command or [])}, "periodSeconds": 30,
             "timeoutSeconds": 10, "failureThreshold": 10},
            "readinessProbe": http_probe(args.readiness_path, 5, 3),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *args.volume_mounts],
        }
        if args.port is not None:
            container["ports"] = [{"name": args.port_name, "containerPort": args.port, "protocol": "TCP"}]
        if args.config_map:
            container["envFrom"] = [{"configMapRef": {"name": args.config_map}}]
        fingerprint = hashlib.sha256(json.dumps([args.config_map, args.command], sort_keys=True).encode())
        spec: dict[str, Any] = {
            "selector": {"matchLabels": self.selector},
            "revisionHistoryLimit": 5,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {"agent-infra/spec-hash": fingerprint.hexdigest()[:16],
                                             **args.annotations}},
                "spec": {
                    "serviceAccountName": args.service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(APP_UID, fs_group=APP_UID),
                    "terminationGracePeriodSeconds": args.termination_grace_period_seconds,
                    "topologySpreadConstraints": topology_spread(self.selector),
                    "containers": [container],
                    "volumes": [scratch_volume("tmp"), *args.volumes],
                },
            },
        }
        if args.image_pull_secret:
            spec["template"]["spec"]["imagePullSecrets"] = [{"name": args.image_pull_secret}]
        if args.replicas is not None:
            spec["replicas"] = args.replicas
        self.deployment = child("deployment", k8s.apps.v1.Deployment, name,
                                metadata=metadata(name, args.namespace, pod_labels), spec=spec)
        self.register_outputs({"name": name})
