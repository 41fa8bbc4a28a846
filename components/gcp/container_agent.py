"""The GCP container topology: Cloud Run API (public) and worker (internal, always-on CPU) services
on a private VPC with direct VPC egress; Memorystore for Redis as Redis Streams queue and session
state; app secrets in Secret Manager with per-secret accessor grants; alert policies, log retention
and a billing budget.

`HybridAgent` (hybrid_agent.py) is this plus Cloud SQL for PostgreSQL with pgvector.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from .._base import ChildFactory, physical_name
from ..app_env import WORKER_HEALTH_PATH, WORKER_HEALTH_PORT, app_environment
from ..config import DeploymentConfig, GcpOptions
from ..errors import ConfigError
from ..secret_refs import resolve_secret_refs
from .budget import Budget
from .cloud_run_service import CloudRunService
from .database import Database
from .image import ArtifactImage
from .labels import gcp_labels
from .network import Network
from .observability import Observability
from .redis import Redis
from .secrets import Secrets

API_COMMAND = ["agent-app", "serve", "--no-worker"]
"""The API only accepts and answers; the worker service consumes the queue. An API that consumed
too would need the consumer's grants and would run tasks on a service scaled for requests
(on Cloud Run, with CPU throttled outside requests)."""
WORKER_COMMAND = ["agent-app", "worker"]
LOG_RETENTION_MAX_DAYS = 3_650


def app_secrets(config: DeploymentConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """`app.secrets` -> (values read from Pulumi config secrets, existing Secret Manager secrets)."""
    return resolve_secret_refs(config, "gcp_secret", "GCP")


def _database_password(config: DeploymentConfig, options: GcpOptions) -> Any:
    ref = options.database_password
    if not ref.config:
        raise ConfigError("deployment.gcp.database_password: use {config: KEY} (the value must reach Cloud SQL's "
                          "user); run `pulumi config set --secret databasePassword \"$(openssl rand -hex 24)\"`")
    value = pulumi.Config().get_secret(ref.config)
    if value is None:
        raise ConfigError(f"deployment.gcp.database_password: config key {ref.config!r} is not set; run "
                          f"`pulumi config set --secret {ref.config} \"$(openssl rand -hex 24)\"`")
    return value


class ContainerAgent(pulumi.ComponentResource):
    """Cloud Run API + worker, Memorystore queue/state, secrets, alerts, log retention, budget.

    Children stay public (`network`, `image`, `secrets`, `redis`, `database`, `api`, `worker`,
    `observability`, `budget`, `api_account`, `worker_account`) so a program can extend them.
    """

    type_token = "agent-infra:gcp:ContainerAgent"
    hybrid = False

    outputs: dict[str, Any]
    """endpoint (the API's URL), worker_service, redis_host, image; database_private_ip and
    database_connection_name when the database is on."""

    def __init__(self, name: str, config: DeploymentConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        if config.gcp is None:
            raise ConfigError("deployment.gcp.project: required when cloud is gcp")
        options = config.gcp
        if config.vectors.backend in ("vertex", "opensearch", "qdrant"):
            raise ConfigError(f"deployment.vectors.backend: {config.vectors.backend} is not built on GCP in this "
                              "version; use pgvector (Cloud SQL) or none")
        if config.state_backend not in ("memorystore", "redis"):
            raise ConfigError(f"deployment.state.backend: {config.state_backend} is not available for the GCP "
                              f"{config.topology} topology; use memorystore (or auto)")
        secret_values, existing_secrets = app_secrets(config)  # validate before anything is registered
        db_password = _database_password(config, options) if config.database_enabled else None
        super().__init__(self.type_token, name, None, opts)
        prod = config.is_production
        region = config.regions.primary
        labels = gcp_labels(config.all_tags(pulumi.get_project(), pulumi.get_stack()))
        child = ChildFactory(self)
        self.provider = child("provider", gcp.Provider, f"{name}-gcp", project=options.project, region=region)
        here = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.database: Database | None = None

        self.network = Network(f"{name}-network", {"region": region}, here)
        self.image = ArtifactImage(f"{name}-image", {"project": options.project, "location": region,
                                                     "image": config.app.image, "labels": labels}, here)
        self.api_account = child("account", gcp.serviceaccount.Account, f"{name}-api-sa",
                                 account_id=physical_name(f"{name}-api", 30).lower(),
                                 display_name=f"{name} API (Cloud Run)", opts=pulumi.ResourceOptions(provider=self.provider))
        self.worker_account = child("account", gcp.serviceaccount.Account, f"{name}-worker-sa",
                                    account_id=physical_name(f"{name}-worker", 30).lower(),
                                    display_name=f"{name} worker (Cloud Run)",
                                    opts=pulumi.ResourceOptions(provider=self.provider))
        readers = {"api": self.api_account.email.apply(lambda e: f"serviceAccount:{e}"),
                   "worker": self.worker_account.email.apply(lambda e: f"serviceAccount:{e}")}

        self.secrets = Secrets(f"{name}-secrets", {"values": secret_values, "existing": existing_secrets,
                                                   "accessors": readers, "labels": labels}, here)
        after_peering = pulumi.ResourceOptions.merge(here, pulumi.ResourceOptions(
            depends_on=[self.network.private_connection]))
        self.redis = Redis(f"{name}-redis", {
            "region": region, "network_id": self.network.network_id,
            "reserved_ip_range": self.network.private_range_name,
            "tier": "STANDARD_HA" if prod else "BASIC", "accessors": readers, "labels": labels}, after_peering)
        endpoints: dict[str, Any] = {"queue_backend": "redis", "state_backend": "redis", "bind_host": "0.0.0.0",
                                     "port": str(config.app.port)}
        secrets: dict[str, Any] = {**self.secrets.refs, "AGENT_REDIS_URL": self.redis.url_secret}
        if config.database_enabled:
            self.database = Database(f"{name}-db", {
                "region": region, "network_id": self.network.network_id, "password": db_password,
                "high_availability": prod, "backup_retention_days": config.database.backup_retention_days,
                "deletion_protection": config.deletion_protection, "accessors": readers, "labels": labels},
                after_peering)
            endpoints["database_url"] = self.database.url
            # libpq and asyncpg read PGPASSWORD when the URL has none.
            secrets["PGPASSWORD"] = self.database.password_secret
        endpoints["vector_backend"] = "pgvector" if config.vectors.backend == "pgvector" and self.database else "memory"
        endpoints["redis_ca_cert"] = self.redis.ca_cert
        env = app_environment(config, **endpoints)

        common: dict[str, Any] = {
            "location": region, "image": self.image.image_ref, "cpu": config.app.cpu,
            "memory_mb": max(512, config.app.memory_mb), "secrets": secrets,
            "network_id": self.network.network_id, "subnet_id": self.network.subnet_id,
            "timeout_seconds": config.timeouts.request_seconds, "deletion_protection": prod, "labels": labels}
        self.api = CloudRunService(f"{name}-api", {
            **common, "service_account_email": self.api_account.email, "command": API_COMMAND,
            "port": config.app.port, "ingress": "all", "public": True, "environment": env,
            "min_instances": max(config.scaling.min_instances, 2 if prod else 0),
            "max_instances": max(config.scaling.max_instances, 2 if prod else 1), "concurrency": 80}, here)
        self.worker = CloudRunService(f"{name}-worker", {
            **common, "service_account_email": self.worker_account.email, "command": WORKER_COMMAND,
            # Cloud Run routes to and probes one port: the worker's health server is that port.
            "port": WORKER_HEALTH_PORT, "health_path": WORKER_HEALTH_PATH, "ingress": "internal",
            "environment": {**env, "AGENT_WORKER_HEALTH_PORT": str(WORKER_HEALTH_PORT)},
            # Consuming a queue is work outside any request: keep one instance with CPU always on.
            "min_instances": max(1, config.scaling.worker_min_instances),
            "max_instances": max(1, config.scaling.worker_max_instances),
            "cpu_always_allocated": True, "concurrency": 10}, here)

        emails = sorted(set(config.budget.emails) | set(config.observability.alarm_emails))
        self.observability = Observability(f"{name}-observability", {
            "project": options.project, "emails": emails,
            "services": {"api": self.api.service_name, "worker": self.worker.service_name},
            "redis_instance_ids": {"redis": self.redis.instance_id},
            "log_retention_days": min(config.observability.log_retention_days, LOG_RETENTION_MAX_DAYS)}, here)
        self.budget: Budget | None = None
        if options.billing_account:
            project_number = gcp.organizations.get_project_output(
                project_id=options.project, opts=pulumi.InvokeOptions(provider=self.provider)).number
            self.budget = Budget(f"{name}-budget", {
                "billing_account": options.billing_account, "project_number": project_number,
                "monthly_limit_usd": config.budget.monthly_limit_usd,
                "alert_thresholds_percent": config.budget.alert_thresholds_percent,
                "forecast_threshold_percent": config.budget.forecast_threshold_percent,
                "notification_channels": self.observability.channel_ids}, here)
        else:
            pulumi.log.warn("deployment.gcp.billing_account is not set, so no budget is created for this stack "
                            f"(budget.monthly_limit_usd: {config.budget.monthly_limit_usd:g}); set "
                            "gcp.billing_account to your Cloud Billing account id", resource=self)

        self.outputs = {"endpoint": self.api.uri, "worker_service": self.worker.service_name,
                        "redis_host": self.redis.host, "image": self.image.image_ref}
        if self.database is not None:
            self.outputs["database_private_ip"] = self.database.private_ip
            self.outputs["database_connection_name"] = self.database.connection_name
        self.register_outputs(self.outputs)
