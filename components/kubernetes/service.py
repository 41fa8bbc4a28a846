"""`Service`: the stable in-cluster address of the API pods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms


class ServiceArgs(ComponentArgs):
    """A ClusterIP Service (never a LoadBalancer: the Ingress is the one public entry). Cost: none."""

    namespace: str | pulumi.Output[str]
    """Namespace to create it in."""
    selector: dict[str, str]
    """Pod labels to route to."""
    port: int = Field(80, ge=1, le=65_535)
    """Service port the Ingress targets."""
    target_port: str | int = "http"
    """Container port (name or number)."""
    labels: dict[str, str] = {}
    """Labels on the Service."""
    transforms: Mapping[Literal["service"], Transform] = {}
    """Escape hatch per child role (`service`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Service(pulumi.ComponentResource):
    """ClusterIP Service named like the component."""

    name: str
    """Service name (DNS: `<name>.<namespace>.svc`)."""
    port: int
    """Service port."""

    def __init__(self, name: str, args: ServiceArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(ServiceArgs, args, "service")
        super().__init__("agent-infra:kubernetes:Service", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.service = child("service", k8s.core.v1.Service, name, metadata=metadata(name, args.namespace, args.labels),
                             spec={"type": "ClusterIP", "selector": dict(args.selector),
                                   "ports": [{"name": "http", "port": args.port, "targetPort": args.target_port,
                                              "protocol": "TCP"}]})
        self.name, self.port = name, args.port
        self.register_outputs({"name": name, "port": args.port})
