"""The AWS hybrid topology: the container topology plus Aurora PostgreSQL (pgvector by default) or
an OpenSearch Serverless vector collection, Redis session state and AWS Backup of the database."""

from __future__ import annotations

from typing import Any

import pulumi

from ..config import DeploymentConfig
from .container_agent import ContainerAgent
from .iam import Grant
from .vector_collection import VectorCollection


class HybridAgent(ContainerAgent):
    """ALB (+WAF) -> API service; SQS (+DLQ) -> workers; Valkey state; Aurora PostgreSQL; vectors.

    The database is on whenever `database.enabled` is not false (the hybrid default); vectors live in
    it (pgvector) unless `vectors.backend: opensearch`. Outputs add `database_endpoint`,
    `redis_endpoint` and, for OpenSearch, `vector_endpoint`.
    """

    type_token = "agent-infra:aws:HybridAgent"
    hybrid = True

    def _pre_services(self, name: str, config: DeploymentConfig, tags: dict[str, str],
                      endpoints: dict[str, Any], app_grants: list[Grant]) -> None:
        if config.vectors.backend != "opensearch":
            return
        collection = f"{pulumi.get_stack()}-{name}-vectors".lower()[:32].rstrip("-")
        self.vectors = VectorCollection(f"{name}-vectors", {
            "collection_name": collection, "vpc_id": self.network.vpc_id,
            "subnet_ids": self.network.private_subnet_ids, "standby_replicas": config.is_production,
            "tags": tags}, pulumi.ResourceOptions(parent=self))
        endpoints["vector_endpoint"] = self.vectors.endpoint
        app_grants.append(self.vectors.grant_access())
