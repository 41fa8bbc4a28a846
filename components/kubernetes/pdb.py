"""`Pdb`: a PodDisruptionBudget, so node drains and upgrades take pods down one at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms


class PdbArgs(ComponentArgs):
    """Voluntary-disruption limit for a workload's pods. Cost: none."""

    namespace: str | pulumi.Output[str]
    """Namespace of the pods."""
    selector: dict[str, str]
    """Pod labels it covers."""
    max_unavailable: int = Field(1, ge=1)
    """Pods a drain may evict at once. 1 (not `minAvailable: 1`) so a one-replica workload never
    blocks node upgrades."""
    labels: dict[str, str] = {}
    """Labels on the PDB."""
    transforms: Mapping[Literal["pdb"], Transform] = {}
    """Escape hatch per child role (`pdb`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Pdb(pulumi.ComponentResource):
    """policy/v1 PodDisruptionBudget named like the component."""

    def __init__(self, name: str, args: PdbArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(PdbArgs, args, "pdb")
        super().__init__("agent-infra:kubernetes:Pdb", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.pdb = child("pdb", k8s.policy.v1.PodDisruptionBudget, name,
                         metadata=metadata(name, args.namespace, args.labels),
                         spec={"maxUnavailable": args.max_unavailable, "selector": {"matchLabels": dict(args.selector)},
                               "unhealthyPodEvictionPolicy": "AlwaysAllow"})
        self.register_outputs({})
