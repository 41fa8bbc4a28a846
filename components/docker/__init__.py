"""Docker building blocks: the agent_app image (`AgentImage`) and the local one-machine topology."""

from .image import AgentImage, AgentImageArgs, content_hash
from .local import ContainerAgent, HybridAgent

__all__ = ["AgentImage", "AgentImageArgs", "ContainerAgent", "HybridAgent", "content_hash"]
