"""`Redis`: the queue (Redis Streams) and session state, as a one-pod StatefulSet with auth and AOF."""

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
from .secrets import SecretKey, secret_files_volume

REDIS_IMAGE = "redis:7.4.2-alpine"
REDIS_UID = 10001
"""Any non-root UID works: the image's entrypoint only chowns when started as root, and fsGroup
makes the PVC writable. Above 10000 so it never maps to a host user."""
REDIS_PORT = 6379
PASSWORD_DIR = "/run/secrets/redis"
"""Where the password file is mounted (read-only, mode 0400 + fsGroup read)."""
PASSWORD_FILE = f"{PASSWORD_DIR}/password"


class RedisArgs(ComponentArgs):
    """Redis 7 with a password, append-only persistence on a PVC and `noeviction` (a queue must
    never silently drop tasks). Cost: the PVC (`storage_gb`) plus 100m CPU / 256Mi reserved."""

    namespace: str | pulumi.Output[str]
    """Namespace to run in."""
    instance: str
    """`app.kubernetes.io/instance` label (the topology's name)."""
    password_secret: str
    """Secret holding the password (clients authenticate with it; KEDA reads it too)."""
    password_key: str
    """Key in `password_secret`."""
    image: str = REDIS_IMAGE
    """Pinned Redis image (Streams with consumer groups need 5+, lag counts 7+). A digest
    (`redis@sha256:...`) is pulled `IfNotPresent`, a tag `Always`."""
    storage_gb: int = Field(5, ge=1, le=1_000)
    """PVC size for the AOF and snapshots."""
    storage_class: str | None = None
    """StorageClass. None: the cluster default."""
    memory_limit_mb: int = Field(512, ge=128, le=65_536)
    """Memory limit; `maxmemory` is set to 80% of it so Redis refuses writes before the OOM killer acts."""
    labels: dict[str, str] = {}
    """Labels on every object."""
    transforms: Mapping[Literal["service", "statefulset"], Transform] = {}
    """Escape hatch per child role (`service`, `statefulset`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Redis(pulumi.ComponentResource):
    """StatefulSet + headless Service, both named like the component."""

    host: str
    """In-cluster DNS name, without the namespace suffix (resolves within the namespace)."""
    port: int
    """6379."""
    selector: dict[str, str]
    """Labels of the Redis pod (for NetworkPolicies)."""

    def __init__(self, name: str, args: RedisArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(RedisArgs, args, "redis")
        super().__init__("agent-infra:kubernetes:Redis", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.selector = selector(args.instance, "redis")
        pod_labels = labels(args.labels, args.instance, "redis")
        self.service = child("service", k8s.core.v1.Service, name, metadata=metadata(name, args.namespace, pod_labels),
                             spec={"clusterIP": "None", "selector": self.selector,
                                   "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis"}]})
        auth = f'REDISCLI_AUTH="$(cat {PASSWORD_FILE})"'
        ping = ["sh", "-c", f"{auth} redis-cli -h 127.0.0.1 ping | grep -q PONG"]
        maxmemory = args.memory_limit_mb * 8 // 10
        options = ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", "/data",
                   "--maxmemory", f"{maxmemory}mb", "--maxmemory-policy", "noeviction", "--protected-mode", "no"]
        # The password reaches redis-server as config on stdin (`redis-server -`), read from the
        # mounted file: never in an env var, never on the command line. `exec` keeps redis-server PID 1.
        start = (f'exec redis-server - {" ".join(options)} <<EOF\n'
                 f'requirepass "$(cat {PASSWORD_FILE})"\nEOF\n')
        container = {
            "name": "redis",
            "image": args.image,
            "imagePullPolicy": pull_policy(args.image),
            "command": ["sh", "-c", start],
            "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "64Mi"},
                          "limits": {"cpu": "500m", "memory": f"{args.memory_limit_mb}Mi", "ephemeral-storage": "256Mi"}},
            "securityContext": container_security_context(REDIS_UID),
            "startupProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5, "failureThreshold": 24},
            "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 15, "failureThreshold": 4},
            "readinessProbe": {"exec": {"command": ping}, "periodSeconds": 10, "timeoutSeconds": 3,
                               "failureThreshold": 3},
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"},
                             {"name": "password", "mountPath": PASSWORD_DIR, "readOnly": True}],
        }
        self.statefulset = child(
            "statefulset", k8s.apps.v1.StatefulSet, name, metadata=metadata(name, args.namespace, pod_labels),
            spec=single_replica_statefulset_spec(
                name, self.selector, pod_labels, REDIS_UID, container,
                [scratch_volume("tmp", 64),
                 secret_files_volume("password", {"password": SecretKey(args.password_secret, args.password_key)})],
                "data", args.storage_gb, args.storage_class))
        self.host, self.port = name, REDIS_PORT
        self.register_outputs({"host": name, "port": REDIS_PORT})
