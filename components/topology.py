"""Cloud-neutral facades: `ServerlessAgent`, `ContainerAgent`, `HybridAgent`.

Each takes a `DeploymentConfig` (or the same shape as a dict), picks the cloud implementation
and re-exposes its outputs. Outgrow a facade by using the cloud implementation directly
(`agent_infra.components.aws.ServerlessAgent`) or reach through `facade.impl`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import pulumi

from .config import DeploymentConfig, load_deployment
from .errors import ConfigError

# cloud -> module holding that cloud's topology classes. Imported lazily: a program for one
# cloud never pays the import of the others' SDKs.
_IMPLEMENTATIONS = {
    "aws": ".aws",
    "gcp": ".gcp",
    "kubernetes": ".kubernetes",
    "docker": ".docker",
}


def _as_config(args: DeploymentConfig | Mapping[str, Any]) -> DeploymentConfig:
    return args if isinstance(args, DeploymentConfig) else load_deployment(dict(args))


def implementation(cloud: str, topology: str) -> type[pulumi.ComponentResource]:
    """The component class that implements `topology` on `cloud`."""
    from .errors import ConfigError

    class_name = {"serverless": "ServerlessAgent", "container": "ContainerAgent", "hybrid": "HybridAgent"}[topology]
    module = importlib.import_module(_IMPLEMENTATIONS[cloud], __package__)
    impl = getattr(module, class_name, None)
    if impl is None:
        raise ConfigError(f"deployment.topology: {topology} on {cloud} is not implemented in this version of "
                          f"agent-infra; available on {cloud}: "
                          + ", ".join(t for t, c in (("serverless", "ServerlessAgent"), ("container", "ContainerAgent"),
                                                      ("hybrid", "HybridAgent")) if hasattr(module, c)))
    return impl  # type: ignore[no-any-return]


class _Facade(pulumi.ComponentResource):
    topology: str = ""

    endpoint: pulumi.Output[str]
    """Public HTTPS endpoint of the agent API."""
    outputs: dict[str, Any]
    """Every output of the cloud implementation (endpoint, queue_url, table names...)."""

    def __init__(self, name: str, args: DeploymentConfig | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        config = _as_config(args)
        from_stack = config._from_stack
        try:
            if config.topology != self.topology:
                config = config.model_copy(update={"topology": self.topology})
                config = load_deployment(config.model_dump())  # re-run the cross-field rules
            super().__init__(f"agent-infra:topology:{type(self).__name__}", name, None, opts)
            impl_cls: Any = implementation(config.cloud, self.topology)
            self.impl = impl_cls(name, config, pulumi.ResourceOptions(parent=self))
        except ConfigError as error:
            # A config from the stack file: whatever a block finds wrong with it is the stack's.
            raise (error.from_stack() if from_stack else error) from None
        self.outputs = dict(self.impl.outputs)  # type: ignore[attr-defined]
        self.endpoint = self.outputs["endpoint"]
        self.register_outputs(self.outputs)


class ServerlessAgent(_Facade):
    """Functions behind a gateway, a queue with DLQ feeding a worker function, session state with TTL."""

    topology = "serverless"


class ContainerAgent(_Facade):
    """Long-running API service and queue workers (ECS Fargate, Cloud Run, Kubernetes)."""

    topology = "container"


class HybridAgent(_Facade):
    """Container topology plus webhook queue, Redis state, PostgreSQL and vector memory."""

    topology = "hybrid"


FACADES: dict[str, type[_Facade]] = {"serverless": ServerlessAgent, "container": ContainerAgent, "hybrid": HybridAgent}


def deploy(name: str, config: DeploymentConfig, opts: pulumi.ResourceOptions | None = None) -> _Facade:
    """Build the facade the config's topology names."""
    return FACADES[config.topology](name, config, opts)
