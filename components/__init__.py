"""agent-infra: Pulumi components for AI-agent deployments.

    from components import HybridAgent, DeploymentConfig
    HybridAgent("agent", {"cloud": "aws", "topology": "hybrid"})

Cloud building blocks live in `components.aws`, `components.gcp`, `components.kubernetes` and
`components.docker`; the offline plan in `components.plan`.
"""

from components.config import DeploymentConfig, load_deployment
from components.errors import ConfigError
from components.topology import ContainerAgent, HybridAgent, ServerlessAgent, deploy

__all__ = ["ConfigError", "ContainerAgent", "DeploymentConfig", "HybridAgent", "ServerlessAgent", "deploy",
           "load_deployment"]
