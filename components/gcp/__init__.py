"""GCP implementations: one building block a file, and the container and hybrid topologies.

The serverless topology is not built on GCP yet; choosing it stops with a clear error from the facade.
"""

from components.gcp.budget import Budget
from components.gcp.cloud_run_service import CloudRunService
from components.gcp.container_agent import ContainerAgent
from components.gcp.database import Database
from components.gcp.hybrid_agent import HybridAgent
from components.gcp.image import ArtifactImage
from components.gcp.network import Network
from components.gcp.observability import Observability
from components.gcp.redis import Redis
from components.gcp.secrets import Secrets

__all__ = ["ArtifactImage", "Budget", "CloudRunService", "ContainerAgent", "Database", "HybridAgent", "Network",
           "Observability", "Redis", "Secrets"]
