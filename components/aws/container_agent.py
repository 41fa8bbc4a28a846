"""The AWS container topology: ALB (+WAF) -> Fargate API service; SQS (+DLQ) -> Fargate workers
scaled on backlog per task; session state in Redis (or DynamoDB); secrets, alarms, budget, backups.

`HybridAgent` (hybrid_agent.py) is this plus Aurora PostgreSQL (pgvector) or OpenSearch vectors.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from ..app_env import WORKER_HEALTH_PORT, app_environment
from ..config import AwsOptions, DeploymentConfig
from ..errors import ConfigError
from ..secret_refs import resolve_secret_refs
from .backup import Backup
from .bedrock import invoke_model_grant
from .budget import Budget
from .cluster import Cluster
from .database import Database
from .fargate_service import FargateService, unrestored_raises
from .iam import Grant
from .image import EcrImage
from .load_balancer import LoadBalancer
from .network import DEFAULT_INTERFACE_ENDPOINTS, Network
from .observability import Observability
from .queue import Queue
from .redis import Redis
from .region import primary_region
from .secrets import Secrets
from .session_table import SessionTable
from .vector_collection import VectorCollection
from .web_acl import WebAcl

API_COMMAND = ["agent-app", "serve", "--no-worker"]
"""The API only accepts and answers; the worker service consumes the queue. An API that consumed
too would need the consumer's grants and would run tasks on a service scaled for requests
(on Cloud Run, with CPU throttled outside requests)."""
WORKER_COMMAND = ["agent-app", "worker"]


def app_secrets(config: DeploymentConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """`app.secrets` -> (values read from Pulumi config secrets, existing Secrets Manager ARNs)."""
    return resolve_secret_refs(config, "arn", "AWS")


def service_floors(config: DeploymentConfig) -> dict[str, tuple[int, int]]:
    """(min, max) tasks of the api and worker services outside any schedule."""
    return {"api": (max(config.scaling.min_instances, 2 if config.is_production else 1), config.scaling.max_instances),
            "worker": (config.scaling.worker_min_instances, config.scaling.worker_max_instances)}


def scheduled_actions(config: DeploymentConfig, target: str) -> list[dict[str, Any]]:
    """`scaling.schedules` of one target as ECS scheduled actions. A schedule at or below the
    service's floor is a restore: it sets the floor and ceiling back to the service's own."""
    floor, ceiling = service_floors(config)[target]
    actions = []
    for s in config.scaling.schedules:
        if s.target != target:
            continue
        restore = s.min_instances <= floor
        actions.append({"name": s.name, "cron": s.cron, "timezone": s.timezone,
                        "min_count": floor if restore else s.min_instances,
                        "max_count": s.max_instances or ceiling})
    return actions


def check_schedules(config: DeploymentConfig) -> None:
    """Refuse a raise nothing lowers again (Kubernetes refuses a cron window without an end)."""
    problems = []
    for target, (floor, _) in service_floors(config).items():
        mine = [(s.name, s.min_instances) for s in config.scaling.schedules if s.target == target]
        for name in unrestored_raises(mine, floor):
            problems.append(f"scaling.schedules.{name}: raises the {target} floor above {floor} and no schedule for "
                            f"target {target} lowers it again, so it would stay raised after the first firing; add "
                            f"one (e.g. name: {name}-end, cron: '0 20 * * *', min_instances: {floor}, target: {target})")
    if problems:
        raise ConfigError(problems)


class ContainerAgent(pulumi.ComponentResource):
    """ECS Fargate API behind an ALB with WAF, queue workers, Redis state and the cross-cutting blocks.

    Children stay public (`network`, `queue`, `image`, `cluster`, `load_balancer`, `api`, `worker`,
    `redis`, `secrets`, `observability`, `budget`...) so a program can extend without forking.
    """

    type_token = "agent-infra:aws:ContainerAgent"
    hybrid = False

    outputs: dict[str, pulumi.Output[Any]]
    """endpoint, queue_url, dlq_url, redis_endpoint / state_table, database_endpoint (hybrid),
    dashboard_url, alarm_topic_arn, cluster_name, image."""

    def __init__(self, name: str, config: DeploymentConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        aws_options = config.aws or AwsOptions()
        secret_values, secret_arns = app_secrets(config)  # validate before anything is registered
        config, opts = primary_region(name, config, opts)
        check_schedules(config)
        super().__init__(self.type_token, name, None, opts)
        prod = config.is_production
        tags = config.all_tags(pulumi.get_project(), pulumi.get_stack())
        here = pulumi.ResourceOptions(parent=self)
        retention = config.observability.log_retention_days
        self.database: Database | None = None
        self.vectors: VectorCollection | None = None
        self.redis: Redis | None = None
        self.table: SessionTable | None = None

        self.network = Network(f"{name}-network", {
            "cidr_block": aws_options.vpc_cidr, "availability_zones": aws_options.availability_zones,
            "nat_gateways": "per_az" if prod else "single",
            "interface_endpoints": list(DEFAULT_INTERFACE_ENDPOINTS) if prod and aws_options.vpc_endpoints else [],
            "gateway_endpoints": ["s3", "dynamodb"] if aws_options.vpc_endpoints else [],
            "flow_log_retention_days": retention, "flow_log_traffic": "ALL" if prod else "REJECT",
            "tags": tags}, here)
        vpc_id, private = self.network.vpc_id, self.network.private_subnet_ids

        self.secrets = Secrets(f"{name}-secrets", {
            "values": secret_values, "existing_arns": secret_arns,
            "recovery_window_days": 7 if prod else 0, "tags": tags}, here)
        self.queue = Queue(f"{name}-tasks", {
            "dlq_alarm": False,  # Observability alarms on this DLQ, to the stack's alert topic
            "visibility_timeout_seconds": config.visibility_timeout_seconds,
            "max_receive_count": config.queue.max_receive_count,
            "message_retention_seconds": config.queue.message_retention_seconds, "tags": tags}, here)
        self.image = EcrImage(f"{name}-image", {
            "image": config.app.image, "architecture": config.app.architecture, "force_delete": not prod,
            "tags": tags}, here)
        self.cluster = Cluster(f"{name}-cluster", {"container_insights": "enhanced" if prod else "enabled",
                                                   "tags": tags}, here)
        self.load_balancer = LoadBalancer(f"{name}-lb", {
            "vpc_id": vpc_id, "public_subnet_ids": self.network.public_subnet_ids, "target_port": config.app.port,
            "certificate_arn": aws_options.certificate_arn, "idle_timeout_seconds": config.timeouts.idle_seconds,
            "deletion_protection": prod, "access_log_retention_days": 365 if prod else 30, "tags": tags}, here)
        self.web_acl = None
        if aws_options.waf:
            self.web_acl = WebAcl(f"{name}-waf", {
                "resource_arn": self.load_balancer.arn,
                "rate_limit_per_5_minutes": max(10, config.rate_limits.requests_per_second * 300),
                "tags": tags}, here)

        # Session state.
        state_backend = config.state_backend
        endpoints: dict[str, Any] = {"queue_backend": "sqs", "queue_url": self.queue.url,
                                     "queue_dlq_url": self.queue.dlq_url, "bind_host": "0.0.0.0",
                                     "port": str(config.app.port)}
        secrets: dict[str, Any] = dict(self.secrets.arns)
        execution_grants: list[Grant] = [*self.secrets.grant_read(), *self.image.grant_pull()]
        app_grants: list[Grant] = []
        if state_backend == "redis":
            self.redis = Redis(f"{name}-redis", {
                "vpc_id": vpc_id, "subnet_ids": private, "node_type": config.state.redis_node_type,
                "node_count": 2 if prod else 1, "multi_az": prod, "snapshot_retention_days": 7 if prod else 1,
                "secret_recovery_window_days": 7 if prod else 0, "tags": tags}, here)
            endpoints["state_backend"] = "redis"
            secrets["AGENT_REDIS_URL"] = self.redis.url_secret_ref
            execution_grants += self.redis.grant_read_secret()
        elif state_backend == "dynamodb":
            self.table = SessionTable(f"{name}-sessions", {"deletion_protection": config.deletion_protection,
                                                           "tags": tags}, here)
            endpoints.update(state_backend="dynamodb", state_table=self.table.name)
            app_grants.append(self.table.grant_read_write())
        else:
            raise ConfigError(f"deployment.state.backend: {state_backend} is not available on AWS; use redis or dynamodb")

        if config.database_enabled:
            self.database = Database(f"{name}-db", {
                "vpc_id": vpc_id, "subnet_ids": private, "min_capacity_acu": config.database.min_capacity_acu,
                "max_capacity_acu": config.database.max_capacity_acu, "instance_count": 2 if prod else 1,
                "backup_retention_days": config.database.backup_retention_days,
                "deletion_protection": config.deletion_protection, "tags": tags}, here)
            # The password reaches the app as PGPASSWORD below; the app reads no secret ARN for it.
            endpoints["database_url"] = self.database.url_without_password()
            # libpq and asyncpg read PGPASSWORD when the URL has none; rotation needs a task restart.
            secrets["PGPASSWORD"] = self.database.secret_arn.apply(lambda arn: f"{arn}:password::")
            execution_grants += self.database.grant_read_secret()
        vector_backend = config.vectors.backend
        if vector_backend == "pgvector" and self.database is not None:
            endpoints["vector_backend"] = "pgvector"
        elif vector_backend == "opensearch":
            endpoints["vector_backend"] = "opensearch"
        else:
            endpoints["vector_backend"] = "memory"
        if config.app.llm_provider == "bedrock":
            app_grants.append(invoke_model_grant(str(config.app.llm_model), config.regions.primary))

        common: dict[str, Any] = {
            "cluster_name": self.cluster.name, "cluster_arn": self.cluster.arn, "image": self.image.image_ref,
            "architecture": config.app.architecture, "cpu": config.app.cpu, "memory_mb": config.app.memory_mb,
            "secrets": secrets, "execution_grants": execution_grants, "vpc_id": vpc_id, "subnet_ids": private,
            "log_retention_days": retention, "log_kms_key_arn": self.secrets.kms_key_arn, "tags": tags}
        self._pre_services(name, config, tags, endpoints, app_grants)
        env = app_environment(config, **endpoints)
        schedules = {target: scheduled_actions(config, target) for target in ("api", "worker")}
        floors = service_floors(config)
        self.api = FargateService(f"{name}-api", {
            **common, "command": API_COMMAND, "port": config.app.port, "environment": env,
            "task_grants": [self.queue.grant_send(), *app_grants],
            "target_group_arn": self.load_balancer.target_group_arn,
            "request_count_resource_label": pulumi.Output.all(
                self.load_balancer.arn_suffix, self.load_balancer.target_group_arn_suffix).apply(lambda a: f"{a[0]}/{a[1]}"),
            "min_count": floors["api"][0], "max_count": floors["api"][1],
            "cpu_target_percent": config.scaling.cpu_target_percent,
            "requests_per_target": config.scaling.requests_per_target, "schedules": schedules["api"]}, here)
        self.worker = FargateService(f"{name}-worker", {
            **common, "command": WORKER_COMMAND,
            # The worker's /healthz (`--health-port`) backs its container health check.
            "environment": {**env, "AGENT_WORKER_HEALTH_PORT": str(WORKER_HEALTH_PORT)},
            "health_check_port": WORKER_HEALTH_PORT,
            "task_grants": [self.queue.grant_consume(), self.queue.grant_dead_letter(), *app_grants],
            "min_count": floors["worker"][0], "max_count": floors["worker"][1],
            "queue_backlog": {"queue_name": self.queue.name, "jobs_per_task": config.scaling.jobs_per_worker},
            "scale_in_protection": True, "capacity_provider": "FARGATE" if prod else "FARGATE_SPOT",
            "schedules": schedules["worker"]}, here)

        if self.vectors is not None:
            self.vectors.allow_roles([self.api.task_role_arn, self.worker.task_role_arn])
        # Exactly the flows the topology needs; nothing else reaches a task or a data store.
        self._allow(name, "lb", self.load_balancer.security_group_id, "api", self.api.security_group_id, config.app.port)
        for store, store_sg, port in self._stores():
            for svc, svc_sg in (("api", self.api.security_group_id), ("worker", self.worker.security_group_id)):
                self._allow(name, svc, svc_sg, store, store_sg, port)

        emails = sorted(set(config.budget.emails) | set(config.observability.alarm_emails))
        self.observability = Observability(f"{name}-observability", {
            "emails": emails, "queues": [{"label": "tasks", "queue_name": self.queue.name,
                                          "dlq_name": self.queue.dlq_name}],
            "services": [{"label": "api", "cluster_name": self.cluster.name, "service_name": self.api.service_name},
                         {"label": "worker", "cluster_name": self.cluster.name,
                          "service_name": self.worker.service_name}],
            "load_balancer": {"arn_suffix": self.load_balancer.arn_suffix,
                              "target_group_arn_suffix": self.load_balancer.target_group_arn_suffix},
            "redis_cluster_ids": self.redis.member_cluster_ids if self.redis else [],
            "db_cluster_ids": [self.database.cluster_identifier] if self.database else [],
            "queue_age_seconds": max(300, 2 * config.timeouts.run_seconds),
            "p99_latency_seconds": float(config.timeouts.request_seconds), "tags": tags}, here)
        self.secrets.notify_age(self.observability.topic_arn)
        self.budget = Budget(f"{name}-budget", {
            "monthly_limit_usd": config.budget.monthly_limit_usd,
            "alert_thresholds_percent": config.budget.alert_thresholds_percent,
            "forecast_threshold_percent": config.budget.forecast_threshold_percent,
            "emails": config.budget.emails, "topic_arn": self.observability.topic_arn,
            "cost_filter_tags": {"stack": pulumi.get_stack()}, "tags": tags}, here)
        backed_up = [r for r in (self.database.cluster_arn if self.database else None,
                                 self.table.arn if self.table else None) if r is not None]
        self.backup = None
        if backed_up:
            self.backup = Backup(f"{name}-backup", {
                "resource_arns": backed_up, "retention_days": config.backup.retention_days,
                "schedule": config.backup.schedule, "vault_lock": prod,
                "alarm_topic_arn": self.observability.topic_arn, "tags": tags}, here)

        self.outputs = {
            "endpoint": self.load_balancer.endpoint, "queue_url": self.queue.url, "dlq_url": self.queue.dlq_url,
            "cluster_name": self.cluster.name, "image": self.image.image_ref,
            "alarm_topic_arn": self.observability.topic_arn}
        if self.observability.dashboard_url is not None:
            self.outputs["dashboard_url"] = self.observability.dashboard_url
        if self.redis is not None:
            self.outputs["redis_endpoint"] = self.redis.primary_endpoint
        if self.table is not None:
            self.outputs["state_table"] = self.table.name
        if self.database is not None:
            self.outputs["database_endpoint"] = self.database.endpoint
        if self.vectors is not None:
            self.outputs["vector_endpoint"] = self.vectors.endpoint
        self.register_outputs(self.outputs)

    def _pre_services(self, name: str, config: DeploymentConfig, tags: dict[str, str],
                      endpoints: dict[str, Any], app_grants: list[Grant]) -> None:
        """Hook for HybridAgent: blocks the services depend on (the vector collection)."""

    def _stores(self) -> list[tuple[str, pulumi.Output[str], int]]:
        stores = []
        if self.redis is not None:
            stores.append(("redis", self.redis.security_group_id, self.redis.port))
        if self.database is not None:
            stores.append(("db", self.database.security_group_id, self.database.port))
        if self.vectors is not None:
            stores.append(("vectors", self.vectors.security_group_id, 443))
        return stores

    def _allow(self, name: str, src: str, src_sg: pulumi.Output[str], dst: str, dst_sg: pulumi.Output[str],
               port: int) -> None:
        here = pulumi.ResourceOptions(parent=self)
        aws.vpc.SecurityGroupIngressRule(f"{name}-{src}-to-{dst}", security_group_id=dst_sg,
                                         referenced_security_group_id=src_sg, ip_protocol="tcp", from_port=port,
                                         to_port=port, description=f"{src} -> {dst}", opts=here)
        aws.vpc.SecurityGroupEgressRule(f"{name}-{src}-to-{dst}", security_group_id=src_sg,
                                        referenced_security_group_id=dst_sg, ip_protocol="tcp", from_port=port,
                                        to_port=port, description=f"{src} -> {dst}", opts=here)

