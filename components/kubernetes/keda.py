"""`KedaScaler`: a KEDA ScaledObject on Redis Streams backlog, resource use and cron windows.

Workers: `ceil(backlog / jobs_per_worker)` replicas, where the backlog is both the entries not
yet delivered to the consumer group (`lagCount`) and the ones delivered but not acknowledged
(`pendingEntriesCount`); KEDA takes the larger. Scale to zero when both are empty. Cron windows
raise the floor during business hours or batch windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms

KEDA_API = "keda.sh/v1alpha1"


class CronWindow(ComponentArgs):
    """A KEDA cron trigger: at least `desired_replicas` between `start` and `end`."""

    name: str
    """Schedule name (documentation only)."""
    start: str
    """Five-field cron when the window opens."""
    end: str
    """Five-field cron when it closes."""
    timezone: str = "UTC"
    """IANA timezone of both crons."""
    desired_replicas: int = Field(ge=1, le=1_000)
    """Floor while the window is open."""


class RedisStreamTrigger(ComponentArgs):
    """Where the workers' queue is; must match the app's AGENT_QUEUE_STREAM / AGENT_QUEUE_GROUP."""

    address: str | pulumi.Output[str]
    """`host:port` of Redis."""
    stream: str
    """Stream name (`agent:tasks`)."""
    consumer_group: str
    """Consumer group (`agent-workers`)."""
    password_secret: str
    """Secret holding the Redis password."""
    password_key: str
    """Key in `password_secret`."""
    tls: bool = False
    """Redis speaks TLS (managed Redis)."""


class KedaScalerArgs(ComponentArgs):
    """Scale a Deployment with KEDA (operator required). Cost: the replicas it adds; zero when idle."""

    namespace: str | pulumi.Output[str]
    """Namespace of the Deployment."""
    deployment: str
    """Deployment to scale."""
    min_replicas: int = Field(0, ge=0, le=1_000)
    """Floor; 0 scales to zero when no trigger is active."""
    max_replicas: int = Field(10, ge=1, le=1_000)
    """Ceiling: the cost cap."""
    redis_stream: RedisStreamTrigger | None = None
    """Queue-backlog trigger (workers)."""
    jobs_per_worker: int = Field(5, ge=1, le=10_000)
    """Backlog one replica is expected to hold: replicas = ceil(backlog / jobs_per_worker)."""
    cpu_target_percent: int | None = Field(None, ge=10, le=95)
    """Also scale on CPU utilisation (the API, when it needs cron windows too)."""
    memory_target_percent: int | None = Field(None, ge=10, le=95)
    """Also scale on memory utilisation."""
    cron_windows: list[CronWindow] = []
    """Scheduled floors."""
    polling_interval_seconds: int = Field(15, ge=1, le=3_600)
    """How often KEDA reads the triggers."""
    cooldown_seconds: int = Field(300, ge=0, le=86_400)
    """Idle time before scaling to zero."""
    labels: dict[str, str] = {}
    """Labels on the ScaledObject."""
    transforms: Mapping[Literal["scaled_object", "trigger_auth"], Transform] = {}
    """Escape hatch per child role (`scaled_object`, `trigger_auth`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _sane(self) -> KedaScalerArgs:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})")
        if not (self.redis_stream or self.cpu_target_percent or self.memory_target_percent or self.cron_windows):
            raise ValueError("needs at least one trigger: redis_stream, cpu/memory target or cron_windows")
        if self.min_replicas == 0 and not (self.redis_stream or self.cron_windows):
            raise ValueError("min_replicas 0 needs an event trigger (redis_stream or cron_windows); "
                             "CPU and memory cannot wake a deployment from zero")
        return self


class KedaScaler(pulumi.ComponentResource):
    """ScaledObject named like the component (+ a TriggerAuthentication for the Redis password)."""

    def __init__(self, name: str, args: KedaScalerArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(KedaScalerArgs, args, "keda")
        super().__init__("agent-infra:kubernetes:KedaScaler", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        triggers: list[dict[str, Any]] = []
        self.trigger_auth = None
        if args.redis_stream:
            redis = args.redis_stream
            auth_name = f"{name}-redis"
            self.trigger_auth = child(
                "trigger_auth", k8s.apiextensions.CustomResource, auth_name, api_version=KEDA_API,
                kind="TriggerAuthentication", metadata=metadata(auth_name, args.namespace, args.labels),
                spec={"secretTargetRef": [{"parameter": "password", "name": redis.password_secret,
                                           "key": redis.password_key}]})
            base = {"address": redis.address, "stream": redis.stream, "consumerGroup": redis.consumer_group,
                    "enableTLS": "true" if redis.tls else "false", "databaseIndex": "0"}
            for count_key in ("lagCount", "pendingEntriesCount"):
                triggers.append({"type": "redis-streams", "name": f"queue-{count_key.lower()}",
                                 "metadata": {**base, count_key: str(args.jobs_per_worker)},
                                 "authenticationRef": {"name": auth_name}})
        for resource, target in (("cpu", args.cpu_target_percent), ("memory", args.memory_target_percent)):
            if target is not None:
                triggers.append({"type": resource, "metricType": "Utilization", "metadata": {"value": str(target)}})
        for window in args.cron_windows:
            triggers.append({"type": "cron", "name": f"cron-{window.name}",
                             "metadata": {"timezone": window.timezone, "start": window.start, "end": window.end,
                                          "desiredReplicas": str(window.desired_replicas)}})
        self.scaled_object = child(
            "scaled_object", k8s.apiextensions.CustomResource, name, api_version=KEDA_API, kind="ScaledObject",
            metadata=metadata(name, args.namespace, args.labels),
            spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.deployment},
                  "minReplicaCount": args.min_replicas, "maxReplicaCount": args.max_replicas,
                  "pollingInterval": args.polling_interval_seconds, "cooldownPeriod": args.cooldown_seconds,
                  "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {
                      "stabilizationWindowSeconds": 300, "policies": [
                          {"type": "Pods", "value": 1, "periodSeconds": 60}]}}}},
                  "triggers": triggers})
        self.register_outputs({})
