"""`HybridAgent` on Kubernetes: the container topology plus PostgreSQL (pgvector) and vector memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from ..config import DeploymentConfig, load_deployment
from .container_agent import ContainerAgent


class HybridAgent(ContainerAgent):
    """ingress -> API; Redis Streams -> KEDA-scaled workers; Redis state; PostgreSQL with pgvector
    (StatefulSet or CloudNativePG, or `kubernetes.external_database_url`); Qdrant when
    `vectors.backend: qdrant`. The database is on unless `database.enabled: false`."""

    type_token = "agent-infra:kubernetes:HybridAgent"

    def __init__(self, name: str, config: DeploymentConfig | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        config = config if isinstance(config, DeploymentConfig) else load_deployment(dict(config))
        if config.topology != "hybrid":
            config = load_deployment({**config.model_dump(exclude_unset=True), "topology": "hybrid"})
        super().__init__(name, config, opts)
