"""agent-infra: Pulumi components for AI-agent deployments.

    from agent_infra.components import HybridAgent, DeploymentConfig
    HybridAgent("agent", {"cloud": "aws", "topology": "hybrid"})

Cloud building blocks live in `agent_infra.components.aws`, `agent_infra.components.gcp`, `agent_infra.components.kubernetes` and
`agent_infra.components.docker`; the offline plan in `agent_infra.offline`.
"""

from .config import DeploymentConfig, load_deployment
from .errors import ConfigError
from .topology import ContainerAgent, HybridAgent, ServerlessAgent, deploy

__all__ = ["ConfigError", "ContainerAgent", "DeploymentConfig", "HybridAgent", "ServerlessAgent", "deploy",
           "load_deployment"]
