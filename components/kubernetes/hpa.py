"""`Hpa`: a HorizontalPodAutoscaler on CPU and memory utilisation (the API's scaler)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms


class HpaArgs(ComponentArgs):
    """Scale a Deployment between `min_replicas` and `max_replicas` on resource utilisation.
    Needs metrics-server (present on EKS/GKE/AKS). Cost: the replicas it adds."""

    namespace: str | pulumi.Output[str]
    """Namespace of the Deployment."""
    deployment: str
    """Deployment to scale."""
    min_replicas: int = Field(1, ge=1, le=1_000)
    """Floor (an HPA cannot scale to zero; KEDA can)."""
    max_replicas: int = Field(4, ge=1, le=1_000)
    """Ceiling: the cost cap."""
    cpu_target_percent: int | None = Field(60, ge=10, le=95)
    """Average CPU as a percent of the request. None: not a scaling metric."""
    memory_target_percent: int | None = Field(75, ge=10, le=95)
    """Average memory as a percent of the request. None: not a scaling metric."""
    scale_down_stabilization_seconds: int = Field(300, ge=0, le=3_600)
    """Scale-in waits for this long a dip to hold, so bursts do not flap the replica count."""
    labels: dict[str, str] = {}
    """Labels on the HPA."""
    transforms: Mapping[Literal["hpa"], Transform] = {}
    """Escape hatch per child role (`hpa`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _sane(self) -> HpaArgs:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})")
        if self.cpu_target_percent is None and self.memory_target_percent is None:
            raise ValueError("set cpu_target_percent or memory_target_percent")
        return self


class Hpa(pulumi.ComponentResource):
    """autoscaling/v2 HorizontalPodAutoscaler named like the component."""

    def __init__(self, name: str, args: HpaArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(HpaArgs, args, "hpa")
        super().__init__("agent-infra:kubernetes:Hpa", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        metrics = [{"type": "Resource", "resource": {"name": resource, "target": {
            "type": "Utilization", "averageUtilization": target}}}
            for resource, target in (("cpu", args.cpu_target_percent), ("memory", args.memory_target_percent))
            if target is not None]
        self.hpa = child("hpa", k8s.autoscaling.v2.HorizontalPodAutoscaler, name,
                         metadata=metadata(name, args.namespace, args.labels),
                         spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.deployment},
                               "minReplicas": args.min_replicas, "maxReplicas": args.max_replicas,
                               "metrics": metrics,
                               "behavior": {"scaleDown": {"stabilizationWindowSeconds":
                                                          args.scale_down_stabilization_seconds}}})
        self.register_outputs({})
