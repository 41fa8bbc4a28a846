"""`ServiceAccount`: the identity the agent pods run as, with no API token mounted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms


class ServiceAccountArgs(ComponentArgs):
    """A service account without an automounted token: the agent never talks to the Kubernetes API."""

    namespace: str | pulumi.Output[str]
    """Namespace to create it in."""
    annotations: dict[str, str] = {}
    """Cloud identity bindings: `eks.amazonaws.com/role-arn` (IRSA) or
    `iam.gke.io/gcp-service-account` (Workload Identity)."""
    image_pull_secret: str | None = None
    """Existing dockerconfigjson Secret for pulling from a private registry."""
    labels: dict[str, str] = {}
    """Labels on the service account."""
    transforms: Mapping[Literal["service_account"], Transform] = {}
    """Escape hatch per child role (`service_account`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class ServiceAccount(pulumi.ComponentResource):
    """`automountServiceAccountToken: false`; no Role or RoleBinding is created (least privilege)."""

    name: str
    """The service account name (the component name), for `serviceAccountName`."""

    def __init__(self, name: str, args: ServiceAccountArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(ServiceAccountArgs, args, "service_account")
        super().__init__("agent-infra:kubernetes:ServiceAccount", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.service_account = child(
            "service_account", k8s.core.v1.ServiceAccount, name,
            metadata=metadata(name, args.namespace, args.labels, args.annotations),
            automount_service_account_token=False,
            image_pull_secrets=[{"name": args.image_pull_secret}] if args.image_pull_secret else None)
        self.name = name
        self.register_outputs({"name": name})
