"""The GCP hybrid topology: the container topology plus Cloud SQL for PostgreSQL (private IP, TLS,
backups with point-in-time recovery) holding tasks, results and pgvector memory."""

from __future__ import annotations

from .container_agent import ContainerAgent


class HybridAgent(ContainerAgent):
    """Cloud Run API -> Redis Streams -> Cloud Run workers; Memorystore state; Cloud SQL + pgvector.

    The database is on whenever `database.enabled` is not false (the hybrid default); the services
    get AGENT_DATABASE_URL without a password and PGPASSWORD from Secret Manager. Outputs add
    `database_private_ip` and `database_connection_name`.
    """

    type_token = "agent-infra:gcp:HybridAgent"
    hybrid = True
