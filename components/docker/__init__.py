"""Docker building blocks: the agent_app image (`AgentImage`) and the local one-machine topology."""

from components.docker.image import AgentImage, AgentImageArgs, content_hash

__all__ = ["AgentImage", "AgentImageArgs", "content_hash"]
