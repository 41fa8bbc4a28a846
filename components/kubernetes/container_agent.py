"""`ContainerAgent` on Kubernetes: API and workers on any cluster, scaled by the cluster's machinery.

    namespace (restricted PSS) -> service account (no token) -> ConfigMap + Secrets
    ingress -> Service -> API Deployment (HPA on CPU/memory, or KEDA when it has cron windows)
    Redis Streams -> worker Deployment (KEDA on backlog and cron, scale to zero)
    Redis StatefulSet (queue + state), NetworkPolicies, PDBs, VPAs (recommend only)

`HybridAgent` adds PostgreSQL with pgvector (or CloudNativePG) and optionally Qdrant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from ..app_env import QUEUE_GROUP, QUEUE_STREAM, WORKER_HEALTH_PORT, environment_name
from ..config import DeploymentConfig, KubernetesOptions, ScheduleConfig, SecretRef, load_deployment
from ..errors import ConfigError
from ._common import stack_labels
from .config_map import AppConfigMap
from .hpa import Hpa
from .ingress import Ingress
from .keda import CronWindow, KedaScaler, RedisStreamTrigger
from .namespace import Namespace
from .network_policy import DataService, NetworkPolicies
from .pdb import Pdb
from .postgres import POSTGRES_PORT, Postgres, PostgresArgs
from .qdrant import QDRANT_GRPC_PORT, QDRANT_HTTP_PORT, Qdrant
from .redis import REDIS_PORT, Redis
from .secrets import (
    SECRETS_MOUNT_PATH,
    AppSecrets,
    SecretKey,
    check_sources,
    secret_files_volume,
)
from .service import Service
from .service_account import ServiceAccount
from .vpa import Vpa
from .workload import Workload

REDIS_PASSWORD_VAR = "AGENT_REDIS_PASSWORD"
POSTGRES_PASSWORD_VAR = "AGENT_POSTGRES_PASSWORD"


def cron_windows(schedules: list[ScheduleConfig], target: str) -> list[CronWindow]:
    """Scheduled floors as KEDA cron windows: each schedule with a floor opens a window that the
    next schedule for the same target closes (cyclically), so `business-hours` at 08:00 and
    `night` at 20:00 make one window."""
    mine = [s for s in schedules if s.target == target]
    windows = []
    for index, schedule in enumerate(mine):
        if schedule.min_instances == 0:
            continue
        if len(mine) == 1:
            raise ConfigError(f"scaling.schedules.{schedule.name}: a KEDA cron window needs an end; add a second "
                              f"schedule for target {target} that closes it (e.g. name: night, cron: '0 20 * * *', "
                              "min_instances: 0)")
        following = mine[(index + 1) % len(mine)]
        windows.append(CronWindow(name=schedule.name, start=schedule.cron, end=following.cron,
                                  timezone=schedule.timezone, desired_replicas=schedule.min_instances))
    return windows


class ContainerAgent(pulumi.ComponentResource):
    """The container topology on any Kubernetes cluster; pass a `kubernetes.Provider` through
    `opts=pulumi.ResourceOptions(providers=[provider])` to pick the cluster."""

    outputs: dict[str, Any]
    """endpoint, namespace, api_deployment, worker_deployment, queue_stream, queue_group,
    redis_host, database_host (hybrid), image_ref."""

    type_token = "agent-infra:kubernetes:ContainerAgent"

    def __init__(self, name: str, config: DeploymentConfig | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        config = config if isinstance(config, DeploymentConfig) else load_deployment(dict(config))
        k = config.kubernetes or KubernetesOptions()
        self._validate(config, k)
        super().__init__(self.type_token, name, None, opts)
        tags = stack_labels(config.all_tags(pulumi.get_project(), pulumi.get_stack()))
        port = config.app.port

        self.namespace = Namespace(f"{name}-namespace", {"namespace": k.namespace, "labels": tags},
                                   pulumi.ResourceOptions(parent=self))
        ns = self.namespace.name
        child_opts = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        self.service_account = ServiceAccount(f"{name}-app", {"namespace": ns, "labels": tags,
                                                              "image_pull_secret": k.image_pull_secret}, child_opts)
        image_ref = self._image(name, config, k)

        in_cluster_redis = k.external_redis_url is None
        postgres_mode = None
        if config.database_enabled and k.external_database_url is None:
            postgres_mode = k.postgres_operator
        # The app reads its secrets as files (SECRETS_MOUNT_PATH, one per variable). Connection URLs
        # with the in-cluster passwords are built here from the secret Outputs and stored in the
        # Secret too; a password that is not a `config` reference (the program never sees its value)
        # falls back to a secretKeyRef env var expanded into the URL with `$(VAR)`.
        secret_refs: dict[str, SecretRef] = dict(config.app.secrets)
        files: dict[str, SecretKey | None] = dict.fromkeys(config.app.secrets)
        computed: dict[str, pulumi.Output[str]] = {}
        env_passwords: list[str] = []
        if in_cluster_redis:
            secret_refs[REDIS_PASSWORD_VAR] = k.redis_password
            if k.redis_password.config:
                password = pulumi.Config().require_secret(k.redis_password.config)
                computed["AGENT_REDIS_URL"] = pulumi.Output.concat(
                    "redis://:", password, f"@{name}-redis:{REDIS_PORT}/0")
            else:
                env_passwords.append(REDIS_PASSWORD_VAR)
        else:
            secret_refs["AGENT_REDIS_URL"] = k.external_redis_url  # type: ignore[assignment]
        if postgres_mode == "statefulset":
            secret_refs[POSTGRES_PASSWORD_VAR] = k.postgres_password
            if k.postgres_password.config:
                password = pulumi.Config().require_secret(k.postgres_password.config)
                defaults = PostgresArgs.model_fields
                user, database = defaults["user"].default, defaults["database"].default
                computed["AGENT_DATABASE_URL"] = pulumi.Output.concat(
                    f"postgresql://{user}:", password, f"@{name}-postgres:{POSTGRES_PORT}/{database}")
            else:
                env_passwords.append(POSTGRES_PASSWORD_VAR)
        elif config.database_enabled and k.external_database_url is not None:
            secret_refs["AGENT_DATABASE_URL"] = k.external_database_url
        files |= dict.fromkeys(var for var in ("AGENT_REDIS_URL", "AGENT_DATABASE_URL")
                               if var in secret_refs or var in computed)
        self.secrets = AppSecrets(f"{name}-secrets", {
            "namespace": ns, "secrets": secret_refs, "values": computed,
            "external_secrets_store": k.external_secrets_store, "labels": tags}, child_opts)

        data_services: list[DataService] = []
        env: list[dict[str, Any]] = self.secrets.env(env_passwords)
        self.redis = self.postgres = self.qdrant = None
        if in_cluster_redis:
            redis_key = self.secrets.keys[REDIS_PASSWORD_VAR]
            self.redis = Redis(f"{name}-redis", {
                "namespace": ns, "instance": name, "password_secret": redis_key.name, "password_key": redis_key.key,
                "storage_gb": k.redis_storage_gb, "storage_class": k.storage_class, "labels": tags,
                **({"image": k.redis_image} if k.redis_image else {})}, child_opts)
            if REDIS_PASSWORD_VAR in env_passwords:
                env.append({"name": "AGENT_REDIS_URL",
                            "value": f"redis://:$({REDIS_PASSWORD_VAR})@{self.redis.host}:{REDIS_PORT}/0"})
            data_services.append(DataService(name="redis", selector=self.redis.selector, ports=[REDIS_PORT]))
        if postgres_mode is not None:
            pg_args: dict[str, Any] = {"namespace": ns, "instance": name, "mode": postgres_mode,
                                       "instances": 3 if config.is_production else 1,
                                       "storage_gb": k.postgres_storage_gb, "storage_class": k.storage_class,
                                       "labels": tags, "image": k.postgres_image}
            if postgres_mode == "statefulset":
                pg_key = self.secrets.keys[POSTGRES_PASSWORD_VAR]
                pg_args |= {"password_secret": pg_key.name, "password_key": pg_key.key}
            self.postgres = Postgres(f"{name}-postgres", pg_args, child_opts)
            pg = self.postgres
            if postgres_mode == "cloudnativepg":
                # The operator's `<cluster>-app` Secret carries the full connection URI.
                files["AGENT_DATABASE_URL"] = SecretKey(pg.password.name, "uri")
            elif POSTGRES_PASSWORD_VAR in env_passwords:
                env.append({"name": "AGENT_DATABASE_URL", "value": f"postgresql://{pg.user}:"
                            f"$({POSTGRES_PASSWORD_VAR})@{pg.host}:{pg.port}/{pg.database}"})
            data_services.append(DataService(name="postgres", selector=pg.selector, ports=[pg.port]))
        if config.vectors.backend == "qdrant":
            self.qdrant = Qdrant(f"{name}-qdrant", {"namespace": ns, "instance": name,
                                                    "storage_gb": k.qdrant_storage_gb,
                                                    "storage_class": k.storage_class, "labels": tags,
                                                    **({"image": k.qdrant_image} if k.qdrant_image else {})},
                            child_opts)
            data_services.append(DataService(name="qdrant", selector=self.qdrant.selector,
                                             ports=[QDRANT_HTTP_PORT, QDRANT_GRPC_PORT]))

        self.config_map = AppConfigMap(f"{name}-config", {"namespace": ns, "data": self._settings(name, config),
                                                          "labels": tags}, child_opts)
        secret_files = {var: key or self.secrets.keys[var] for var, key in files.items()}
        common: dict[str, Any] = {
            "namespace": ns, "instance": name, "image": image_ref, "port": port,
            "config_map": self.config_map.name, "env": env, "service_account": self.service_account.name,
            "volumes": [secret_files_volume("secrets", secret_files)] if secret_files else [],
            "volume_mounts": [{"name": "secrets", "mountPath": SECRETS_MOUNT_PATH, "readOnly": True}]
            if secret_files else [],
            "cpu_request": k.cpu_request, "memory_request": k.memory_request, "cpu_limit": k.cpu_limit,
            "memory_limit": k.memory_limit, "image_pull_secret": k.image_pull_secret, "labels": tags}
        self.api = Workload(f"{name}-api", {
            **common, "component": "api", "command": ["agent-app", "serve", "--host", "0.0.0.0", "--no-worker"],
            "termination_grace_period_seconds": max(30, config.timeouts.request_seconds + 10)}, child_opts)
        self.worker = Workload(f"{name}-worker", {
            **common, "component": "worker", "command": ["agent-app", "worker"],
            # httpGet probes on `agent-app worker --health-port` (the container port named `health`).
            "port": WORKER_HEALTH_PORT, "port_name": "health",
            "env": [*env, {"name": "AGENT_WORKER_HEALTH_PORT", "value": str(WORKER_HEALTH_PORT)}],
            # Long enough for the longest run to finish after SIGTERM, so scale-in never kills a step.
            "termination_grace_period_seconds": min(86_400, config.timeouts.run_seconds + 30)}, child_opts)
        self.service = Service(f"{name}-api", {"namespace": ns, "selector": self.api.selector, "labels": tags},
                               child_opts)
        self.ingress = Ingress(f"{name}-api", {
            "namespace": ns, "service_name": self.service.name, "service_port": self.service.port,
            "ingress_class": k.ingress_class, "host": k.host, "tls_secret": k.tls_secret,
            "cluster_issuer": k.cluster_issuer, "idle_timeout_seconds": config.timeouts.idle_seconds,
            "requests_per_second": config.rate_limits.requests_per_second, "burst": config.rate_limits.burst,
            "labels": tags}, child_opts)
        self._scalers(name, config, k, ns, tags, child_opts)
        for workload in (self.api, self.worker):
            Vpa(workload.name, {"namespace": ns, "deployment": workload.name, "container": workload.container,
                                "update_mode": k.vpa_mode, "labels": tags}, child_opts)
            Pdb(workload.name, {"namespace": ns, "selector": workload.selector, "labels": tags}, child_opts)
        for service in data_services:
            # One-replica data pods: maxUnavailable 1 lets drains proceed, but makes the disruption explicit.
            Pdb(f"{name}-{service.name}", {"namespace": ns, "selector": service.selector, "labels": tags}, child_opts)
        self.network_policies = NetworkPolicies(f"{name}-network", {
            "namespace": ns, "instance": name, "app_port": port, "ingress_namespace": k.ingress_namespace,
            "data_services": data_services, "llm_egress_cidrs": k.llm_egress_cidrs,
            "cnpg_operator_namespace": "cnpg-system" if postgres_mode == "cloudnativepg" else None,
            "keda_operator_namespace": k.keda_namespace if k.keda and self.redis is not None else None,
            "prometheus_namespace": k.prometheus_namespace,
            "labels": tags}, child_opts)

        self.outputs = {
            "endpoint": self.ingress.endpoint,
            "namespace": ns,
            "api_deployment": pulumi.Output.from_input(self.api.name),
            "worker_deployment": pulumi.Output.from_input(self.worker.name),
            "queue_stream": pulumi.Output.from_input(QUEUE_STREAM),
            "queue_group": pulumi.Output.from_input(QUEUE_GROUP),
            "image_ref": image_ref,
        }
        if self.redis is not None:
            self.outputs["redis_host"] = pulumi.Output.from_input(self.redis.host)
        if self.postgres is not None:
            self.outputs["database_host"] = pulumi.Output.from_input(self.postgres.host)
        self.register_outputs(self.outputs)

    @staticmethod
    def _validate(config: DeploymentConfig, k: KubernetesOptions) -> None:
        problems = check_sources(config.app.secrets, k.external_secrets_store)
        data_refs = {"kubernetes.redis_password": k.redis_password if k.external_redis_url is None else None,
                     "kubernetes.external_redis_url": k.external_redis_url,
                     "kubernetes.postgres_password": k.postgres_password
                     if config.database_enabled and k.external_database_url is None
                     and k.postgres_operator == "statefulset" else None,
                     "kubernetes.external_database_url": k.external_database_url if config.database_enabled else None}
        for path, ref in data_refs.items():
            if ref is not None:
                problems += [p.replace("app.secrets.x", path) for p in check_sources({"x": ref}, k.external_secrets_store)]
        if config.app.image is None and k.image_repository is None:
            problems.append("kubernetes.image_repository: required when app.image is not set (where the built "
                            "agent_app image is pushed, e.g. ghcr.io/acme/agent-app); or set app.image to a "
                            "pinned image")
        if problems:
            raise ConfigError(problems)
        for target in ("api", "worker"):
            cron_windows(config.scaling.schedules, target)

    def _image(self, name: str, config: DeploymentConfig, k: KubernetesOptions) -> pulumi.Output[str]:
        if config.app.image:
            return pulumi.Output.from_input(config.app.image)
        from ..agent_image import AgentImage

        password = None
        if k.registry_password is not None and k.registry_password.config:
            password = pulumi.Config().require_secret(k.registry_password.config)
        self.image = AgentImage(f"{name}-image", {
            "repository": k.image_repository, "platform": "linux/arm64" if config.app.architecture == "arm64"
            else "linux/amd64", "registry_username": k.registry_username, "registry_password": password},
            pulumi.ResourceOptions(parent=self))
        return self.image.image_ref

    @staticmethod
    def _settings(name: str, config: DeploymentConfig) -> dict[str, str]:
        """The non-secret half of agent_app's env contract (settings.py)."""
        if config.vectors.backend == "qdrant":
            vectors = "qdrant"
        elif config.vectors.backend == "pgvector" and config.database_enabled:
            vectors = "pgvector"
        else:
            vectors = "memory"
        data = {
            "AGENT_ENVIRONMENT": environment_name(config),
            "AGENT_BIND_HOST": "0.0.0.0",
            "AGENT_PORT": str(config.app.port),
            "AGENT_QUEUE_BACKEND": "redis",
            "AGENT_QUEUE_STREAM": QUEUE_STREAM,
            "AGENT_QUEUE_GROUP": QUEUE_GROUP,
            "AGENT_STATE_BACKEND": "redis",
            "AGENT_STATE_TTL_SECONDS": str(config.state.ttl_seconds),
            "AGENT_VECTOR_BACKEND": vectors,
            "AGENT_LLM_PROVIDER": config.app.llm_provider,
            "AGENT_LLM_MODEL": config.app.llm_model,
            "AGENT_RUN_TIMEOUT_SECONDS": str(config.timeouts.run_seconds),
            "AGENT_RATE_LIMIT_PER_MINUTE": str(config.rate_limits.per_key_per_minute),
        }
        if config.app.llm_base_url:
            data["AGENT_LLM_BASE_URL"] = config.app.llm_base_url
        if vectors == "qdrant":
            data["AGENT_QDRANT_URL"] = f"http://{name}-qdrant:{QDRANT_HTTP_PORT}"
        return {**data, **config.app.environment}

    def _scalers(self, name: str, config: DeploymentConfig, k: KubernetesOptions, ns: pulumi.Output[str],
                 tags: dict[str, str], opts: pulumi.ResourceOptions) -> None:
        scaling = config.scaling
        api_windows = cron_windows(scaling.schedules, "api")
        worker_windows = cron_windows(scaling.schedules, "worker")
        base = {"namespace": ns, "labels": tags}
        if k.keda and api_windows:
            # An HPA and a ScaledObject must not both own a Deployment: KEDA takes CPU/memory too.
            self.api_scaler: Any = KedaScaler(self.api.name, {
                **base, "deployment": self.api.name, "min_replicas": max(1, scaling.min_instances),
                "max_replicas": scaling.max_instances, "cpu_target_percent": scaling.cpu_target_percent,
                "memory_target_percent": scaling.memory_target_percent, "cron_windows": api_windows}, opts)
        else:
            self.api_scaler = Hpa(self.api.name, {
                **base, "deployment": self.api.name, "min_replicas": max(1, scaling.min_instances),
                "max_replicas": scaling.max_instances, "cpu_target_percent": scaling.cpu_target_percent,
                "memory_target_percent": scaling.memory_target_percent}, opts)
        if k.keda and self.redis is not None:
            key = self.secrets.keys[REDIS_PASSWORD_VAR]
            self.worker_scaler: Any = KedaScaler(self.worker.name, {
                **base, "deployment": self.worker.name, "min_replicas": scaling.worker_min_instances,
                "max_replicas": scaling.worker_max_instances, "jobs_per_worker": scaling.jobs_per_worker,
                "cron_windows": worker_windows,
                "redis_stream": RedisStreamTrigger(
                    address=pulumi.Output.concat(self.redis.host, ".", ns, ".svc:", str(REDIS_PORT)),
                    stream=QUEUE_STREAM, consumer_group=QUEUE_GROUP, password_secret=key.name,
                    password_key=key.key)}, opts)
        else:
            if k.keda:
                pulumi.log.warn("kubernetes.external_redis_url: KEDA cannot read an external Redis URL secret; "
                                "workers scale on CPU instead", self)
            self.worker_scaler = Hpa(self.worker.name, {
                **base, "deployment": self.worker.name, "min_replicas": max(1, scaling.worker_min_instances),
                "max_replicas": scaling.worker_max_instances, "cpu_target_percent": scaling.cpu_target_percent,
                "memory_target_percent": None}, opts)
