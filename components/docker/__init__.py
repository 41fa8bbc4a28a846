"""Docker building blocks: the agent_app image (`AgentImage`) and the local one-machine topology."""

from ..agent_image import AgentImage, AgentImageArgs, content_hash  # cloud-neutral: every target builds it
from .local import ContainerAgent, HybridAgent

__all__ = ["AgentImage", "AgentImageArgs", "ContainerAgent", "HybridAgent", "content_hash"]
