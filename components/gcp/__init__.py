"""GCP implementations: one building block a file, and the container and hybrid topologies.

The serverless topology is not built on GCP yet; choosing it stops with a clear error from the facade.
"""

from .budget import Budget
from .cloud_run_service import CloudRunService
from .container_agent import ContainerAgent
from .database import Database
from .hybrid_agent import HybridAgent
from .image import ArtifactImage
from .network import Network
from .observability import Observability
from .redis import Redis
from .secrets import Secrets

__all__ = ["ArtifactImage", "Budget", "CloudRunService", "ContainerAgent", "Database", "HybridAgent", "Network",
           "Observability", "Redis", "Secrets"]
