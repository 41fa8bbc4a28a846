"""`AppConfigMap`: the app's non-secret settings, read by the pods through `envFrom`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ..config import SECRET_NAME_PATTERN
from ..errors import ConfigError
from ._common import metadata, str_transforms


class AppConfigMapArgs(ComponentArgs):
    """Environment variables that are not secret. Anything named like a secret is refused."""

    namespace: str | pulumi.Output[str]
    """Namespace to create it in."""
    data: dict[str, str]
    """Variable name -> value (`AGENT_QUEUE_BACKEND: redis`)."""
    labels: dict[str, str] = {}
    """Labels on the ConfigMap."""
    transforms: Mapping[Literal["config_map"], Transform] = {}
    """Escape hatch per child role (`config_map`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class AppConfigMap(pulumi.ComponentResource):
    """One ConfigMap named like the component. Its contents are hashed into the pod template's
    `agent-infra/config-hash` annotation by the workloads, so a change rolls the pods."""

    name: str
    """ConfigMap name, for `envFrom.configMapRef`."""

    def __init__(self, name: str, args: AppConfigMapArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(AppConfigMapArgs, args, "config_map")
        leaked = sorted(key for key in args.data if SECRET_NAME_PATTERN.search(key))
        if leaked:
            raise ConfigError([f"app.environment.{key}: looks like a secret; move it to app.secrets as a "
                               "reference ({config: someKey})" for key in leaked])
        super().__init__("agent-infra:kubernetes:AppConfigMap", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.config_map = child("config_map", k8s.core.v1.ConfigMap, name,
                                metadata=metadata(name, args.namespace, args.labels),
                                data=dict(sorted(args.data.items())), immutable=False)
        self.name = name
        self.register_outputs({"name": name})
