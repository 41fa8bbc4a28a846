"""An ECS cluster for Fargate services, with Container Insights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args


class ClusterArgs(ComponentArgs):
    """ECS cluster with FARGATE and FARGATE_SPOT capacity providers.

    Cost: the cluster is free; Container Insights bills its metrics (about $0.07 per task-month
    for `enabled`; `enhanced` adds per-container metrics at a higher rate).
    """

    container_insights: Literal["enabled", "enhanced", "disabled"] = "enabled"
    """Container Insights level. Worker scaling reads `RunningTaskCount` from it: keep it on."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["capacity_providers", "cluster"], Transform] = {}
    """Escape hatch per child role (`capacity_providers`, `cluster`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Cluster(pulumi.ComponentResource):
    """`cluster` plus its capacity providers; services pick FARGATE or FARGATE_SPOT."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(ClusterArgs, args, name)
        super().__init__("agent-infra:aws:Cluster", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        self.cluster = child("cluster", aws.ecs.Cluster, name, name=physical_name(name, 255),
                             settings=[{"name": "containerInsights", "value": args.container_insights}])
        child("capacity_providers", aws.ecs.ClusterCapacityProviders, f"{name}-capacity",
              cluster_name=self.cluster.name, capacity_providers=["FARGATE", "FARGATE_SPOT"],
              default_capacity_provider_strategies=[{"capacity_provider": "FARGATE", "weight": 1, "base": 0}])
        self.name, self.arn = self.cluster.name, self.cluster.arn
        self.register_outputs({"name": self.name, "arn": self.arn})
