"""`Vpa`: a VerticalPodAutoscaler, recommendation-only by default so it never fights the HPA."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms

VPA_API = "autoscaling.k8s.io/v1"


class VpaArgs(ComponentArgs):
    """Right-sizing recommendations for a Deployment's requests (VPA recommender required). Cost: none."""

    namespace: str | pulumi.Output[str]
    """Namespace of the Deployment."""
    deployment: str
    """Deployment to watch."""
    container: str
    """Container the bounds apply to."""
    update_mode: Literal["Off", "Initial", "Recreate"] = "Off"
    """`Off`: only recommend (read them with `kubectl describe vpa`). `Initial`/`Recreate` apply
    them; do that only for workloads no HPA scales on the same resource."""
    min_cpu: str = "100m"
    """Lowest CPU request it will recommend."""
    min_memory: str = "256Mi"
    """Lowest memory request it will recommend."""
    max_cpu: str = "4"
    """Highest CPU request it will recommend."""
    max_memory: str = "8Gi"
    """Highest memory request it will recommend."""
    labels: dict[str, str] = {}
    """Labels on the VPA."""
    transforms: Mapping[Literal["vpa"], Transform] = {}
    """Escape hatch per child role (`vpa`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Vpa(pulumi.ComponentResource):
    """VerticalPodAutoscaler named like the component."""

    def __init__(self, name: str, args: VpaArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(VpaArgs, args, "vpa")
        super().__init__("agent-infra:kubernetes:Vpa", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.vpa = child(
            "vpa", k8s.apiextensions.CustomResource, name, api_version=VPA_API, kind="VerticalPodAutoscaler",
            metadata=metadata(name, args.namespace, args.labels),
            spec={"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.deployment},
                  "updatePolicy": {"updateMode": args.update_mode},
                  "resourcePolicy": {"containerPolicies": [{
                      "containerName": args.container, "controlledResources": ["cpu", "memory"],
                      "minAllowed": {"cpu": args.min_cpu, "memory": args.min_memory},
                      "maxAllowed": {"cpu": args.max_cpu, "memory": args.max_memory}}]}})
        self.register_outputs({})
