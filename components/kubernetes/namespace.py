"""`Namespace`: the namespace everything runs in, enforcing the restricted Pod Security Standard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms


class NamespaceArgs(ComponentArgs):
    """A namespace labelled for Pod Security Admission. Cost: none."""

    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """The namespace's name (cluster-wide unique). Changing it replaces the namespace and everything in it."""
    pod_security: Literal["restricted", "baseline"] = "restricted"
    """Pod Security Standard enforced (and audited and warned) for every pod in the namespace.
    `restricted` is the hardened profile every agent-infra pod satisfies."""
    labels: dict[str, str] = {}
    """Extra labels (the stack's tags go here)."""
    transforms: Mapping[Literal["namespace"], Transform] = {}
    """Escape hatch per child role (`namespace`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Namespace(pulumi.ComponentResource):
    """The deployment's namespace, with `pod-security.kubernetes.io/enforce: restricted`."""

    name: pulumi.Output[str]
    """The namespace name, for every namespaced object's `metadata.namespace`."""

    def __init__(self, name: str, args: NamespaceArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(NamespaceArgs, args, "namespace")
        super().__init__("agent-infra:kubernetes:Namespace", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        psa: dict[str, str] = {f"pod-security.kubernetes.io/{mode}": args.pod_security
                               for mode in ("enforce", "audit", "warn")}
        psa |= {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")}
        self.namespace = child("namespace", k8s.core.v1.Namespace, name,
                               metadata=metadata(args.namespace, None, {**args.labels, **psa}))
        self.name = self.namespace.metadata.name
        self.register_outputs({"name": self.name})
