"""The deployment config: one schema for a stack's config and the topology components' args.

A stack's config is one structured value, `agent-infra:deployment`, in
`stacks/Pulumi.<stack>.yaml`. `load_deployment` validates it before anything is registered and
raises `ConfigError` with one `deployment.<path>: <problem>` line per mistake. Defaults are the
cheap, secure setting; anything costly or risky (multi-AZ, public endpoints, big capacity) is
either off or follows `production`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import ConfigError, problems_from_validation_error
from .regions import region_problem

CONFIG_KEY = "deployment"
NAMESPACE = "agent-infra"
"""Our config namespace, as providers have theirs (`aws:region`): the stack value is
`agent-infra:deployment` whatever the project is called."""
"""The project config key that holds the whole deployment (`agent-infra:deployment`)."""

Cloud = Literal["aws", "gcp", "kubernetes", "docker"]
Topology = Literal["serverless", "container", "hybrid"]

CLOUDWATCH_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                             1096, 1827, 2192, 2557, 2922, 3288, 3653)
SECRET_NAME_PATTERN = re.compile(r"(?i)(secret|passw(or)?d|token|api[_-]?key|private[_-]?key|credential)")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CRON_FIELD = re.compile(r"^[\d*/,\-?LW#A-Za-z]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Section(BaseModel):
    """Strict config section: unknown keys are refused so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class RegionsConfig(Section):
    """Where the deployment runs."""

    primary: str = "us-east-1"
    """Primary region (AWS `us-east-1`, GCP `us-central1`). For kubernetes: a label for the cluster."""
    disaster_recovery: list[str] = []
    """Standby regions for multi-region disaster recovery, in failover order. Empty: one region."""


class SecretRef(Section):
    """A reference to a secret, never its value. Exactly one of the fields is set."""

    config: str | None = None
    """A project config key set with `pulumi config set --secret KEY`; the component copies it
    into the cloud's secret manager (or a Kubernetes Secret) and hands the app a reference."""
    arn: str | None = None
    """An existing AWS Secrets Manager secret ARN."""
    gcp_secret: str | None = None
    """An existing GCP Secret Manager secret (`projects/P/secrets/NAME`)."""
    kubernetes_secret: str | None = None
    """An existing Kubernetes Secret key as `NAME/KEY`."""

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        chosen = [k for k in ("config", "arn", "gcp_secret", "kubernetes_secret") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError("set exactly one of config, arn, gcp_secret, kubernetes_secret"
                             f" (got {', '.join(chosen) or 'none'})")
        if self.arn and not self.arn.startswith("arn:aws") :
            raise ValueError(f"arn must be a Secrets Manager ARN (arn:aws:secretsmanager:...), got {self.arn!r}")
        if self.arn and ":secretsmanager:" not in self.arn:
            raise ValueError(f"arn must name a Secrets Manager secret, got {self.arn!r}")
        if self.kubernetes_secret and "/" not in self.kubernetes_secret:
            raise ValueError("kubernetes_secret must be NAME/KEY")
        return self


class AppConfig(Section):
    """The agent application: what runs and which model it talks to."""

    image: str | None = None
    """Container image for container and hybrid topologies. Default: built from
    `agent_app/Dockerfile` and tagged by content. `:latest` is refused (not reproducible)."""
    code_path: str | None = None
    """Serverless only: the Lambda bundle (.zip) to deploy. Default: the artifact written by
    `agent-infra build` under `.agent-infra/build/`."""
    llm_provider: Literal["offline", "openai", "anthropic", "bedrock"] = "offline"
    """Which LLM adapter the app uses. `offline` is deterministic and needs no key or network."""
    llm_model: str = "offline-deterministic"
    """Model id for the provider (e.g. `gpt-4o-mini`, `claude-sonnet-4-5`, a Bedrock model id)."""
    llm_base_url: str | None = None
    """OpenAI-compatible endpoint (vLLM, Ollama). Default: the provider's public endpoint."""
    memory_mb: int = Field(1024, ge=128, le=10_240)
    """Memory per function or task, MiB. Lambda bills per MB-second: 1024 is a balanced default."""
    cpu: float = Field(0.5, ge=0.25, le=16)
    """vCPUs per container (Fargate: 0.25-16; memory must fit the CPU size)."""
    architecture: Literal["arm64", "x86_64"] = "arm64"
    """CPU architecture. arm64 (Graviton) is about 20% cheaper for the same work."""
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    """Serverless runtime."""
    secrets: dict[str, SecretRef] = {}
    """Environment variable name -> secret reference (`AGENT_LLM_API_KEY: {config: llmApiKey}`).
    Values never appear here, in plain env vars or in state."""
    environment: dict[str, str] = {}
    """Extra non-secret environment variables for the app."""
    port: int = Field(8000, ge=1024, le=65_535)
    """Port the API container listens on (non-root, so above 1023)."""

    @field_validator("secrets", mode="before")
    @classmethod
    def _refs_not_values(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for key, ref in value.items():
                if isinstance(ref, str):
                    raise ValueError(
                        f"{key} must be a reference such as {{config: llmApiKey}}, never a value; run "
                        f"`pulumi config set --secret llmApiKey <value>` and reference it")
        return value

    @field_validator("secrets", "environment")
    @classmethod
    def _env_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name (A-Z, 0-9, _)")
        return value

    @field_validator("environment")
    @classmethod
    def _no_secret_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if SECRET_NAME_PATTERN.search(key):
                raise ValueError(f"{key} looks like a secret; move it to app.secrets as a reference")
        return value

    @field_validator("image")
    @classmethod
    def _pinned_image(cls, value: str | None) -> str | None:
        if value is not None and (value.endswith(":latest") or ("@" not in value and ":" not in value.rsplit("/", 1)[-1])):
            raise ValueError(f"image must be pinned to a tag or digest other than latest, got {value!r}")
        return value


class QueueConfig(Section):
    """The task queue and its dead-letter queue (always on)."""

    visibility_timeout_seconds: int | None = Field(None, ge=30, le=43_200)
    """How long a claimed task stays hidden before redelivery. Default: 6x timeouts.run_seconds
    (AWS's advice for Lambda consumers), at most 12 hours."""
    max_receive_count: int = Field(3, ge=1, le=1_000)
    """Deliveries before a task moves to the DLQ, where it can be inspected and replayed."""
    message_retention_seconds: int = Field(345_600, ge=60, le=1_209_600)
    """How long an unconsumed task is kept (default 4 days; the DLQ keeps 14 days)."""


class StateConfig(Section):
    """Session state with expiry."""

    backend: Literal["auto", "dynamodb", "redis", "firestore", "memorystore"] = "auto"
    """`auto`: DynamoDB for AWS serverless, Redis for container/hybrid, Firestore on GCP serverless."""
    ttl_seconds: int = Field(86_400, ge=60, le=31_536_000)
    """Session expiry after the last step."""
    redis_node_type: str = "cache.t4g.micro"
    """ElastiCache node type for Redis/Valkey state (AWS hybrid)."""


class DatabaseConfig(Section):
    """PostgreSQL for tasks, results and (by default) pgvector memory."""

    enabled: bool | None = None
    """Default: on for the hybrid topology, off otherwise."""
    min_capacity_acu: float = Field(0.5, ge=0, le=256)
    """Aurora Serverless v2 minimum capacity (ACU). 0.5 ACU is the cheapest always-on floor."""
    max_capacity_acu: float = Field(4, ge=1, le=256)
    """Aurora Serverless v2 maximum capacity (ACU): the cost ceiling."""
    backup_retention_days: int = Field(7, ge=1, le=35)
    """Automated backup retention."""
    deletion_protection: bool | None = None
    """Default: on in production, off elsewhere so dev stacks can be torn down."""

    @model_validator(mode="after")
    def _capacity_order(self) -> DatabaseConfig:
        if self.min_capacity_acu > self.max_capacity_acu:
            raise ValueError(f"min_capacity_acu ({self.min_capacity_acu}) must not exceed max_capacity_acu"
                             f" ({self.max_capacity_acu})")
        return self


class VectorConfig(Section):
    """Vector memory the agent retrieves past results from."""

    backend: Literal["pgvector", "opensearch", "vertex", "qdrant", "none"] = "pgvector"
    """pgvector (in the PostgreSQL database; default), OpenSearch Serverless (AWS), Vertex AI
    Vector Search (GCP), Qdrant (Kubernetes/Docker), or none."""
    dimensions: int = Field(1536, ge=2, le=16_000)
    """Embedding size."""


class ScheduleConfig(Section):
    """A scheduled scaling action (KEDA cron, ECS scheduled actions, Lambda provisioned concurrency)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    """Short kebab-case name."""
    cron: str
    """Five-field cron (`0 8 * * 1-5`) in `timezone`."""
    timezone: str = "UTC"
    """IANA timezone name."""
    min_instances: int = Field(ge=0, le=1_000)
    """Floor while the schedule is active."""
    max_instances: int | None = Field(None, ge=1, le=1_000)
    """Ceiling while active. Default: scaling.max_instances."""
    target: Literal["api", "worker"] = "api"
    """Which service the action scales."""

    @field_validator("cron")
    @classmethod
    def _cron_fields(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ValueError(f"must be a five-field cron expression like '0 8 * * 1-5', got {value!r}")
        return value


class ScalingConfig(Section):
    """How many copies run. One knob, `jobs_per_worker`, drives queue-backlog scaling everywhere:
    ECS step scaling on backlog per task, KEDA's queue length, Lambda batch size/concurrency."""

    min_instances: int = Field(1, ge=0, le=1_000)
    """API floor (containers). 0 allows scale-to-zero where the platform supports it."""
    max_instances: int = Field(4, ge=1, le=1_000)
    """API ceiling: the cost cap."""
    worker_min_instances: int = Field(0, ge=0, le=1_000)
    """Worker floor. 0: workers scale to zero when the queue is empty."""
    worker_max_instances: int = Field(10, ge=1, le=1_000)
    """Worker ceiling."""
    cpu_target_percent: int = Field(60, ge=10, le=95)
    """Target CPU utilisation for API autoscaling."""
    memory_target_percent: int = Field(75, ge=10, le=95)
    """Target memory utilisation for API autoscaling (Kubernetes HPA)."""
    requests_per_target: int = Field(100, ge=1, le=100_000)
    """Target requests per API instance per minute (ALB request-count tracking)."""
    jobs_per_worker: int = Field(5, ge=1, le=10_000)
    """Queue backlog one worker is expected to hold; workers = ceil(backlog / jobs_per_worker)."""
    reserved_concurrency: int | None = Field(None, ge=1, le=10_000)
    """Serverless: cap concurrent executions of each function (protects downstreams and cost)."""
    schedules: list[ScheduleConfig] = []
    """Scheduled floors and ceilings (business hours, batch windows)."""

    @model_validator(mode="after")
    def _ranges(self) -> ScalingConfig:
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances ({self.min_instances}) must not exceed max_instances ({self.max_instances})")
        if self.worker_min_instances > self.worker_max_instances:
            raise ValueError(f"worker_min_instances ({self.worker_min_instances}) must not exceed"
                             f" worker_max_instances ({self.worker_max_instances})")
        names = [s.name for s in self.schedules]
        if len(names) != len(set(names)):
            raise ValueError(f"schedule names must be unique, got {names}")
        return self


class RateLimitConfig(Section):
    """Throttling at the public entry point and per API key in the app."""

    requests_per_second: int = Field(50, ge=1, le=100_000)
    """Steady-state limit at the gateway (API Gateway stage, WAF, ingress)."""
    burst: int = Field(100, ge=1, le=100_000)
    """Burst allowance at the gateway."""
    per_key_per_minute: int = Field(60, ge=1, le=1_000_000)
    """App-level limit per API key (429 with Retry-After)."""


class TimeoutConfig(Section):
    """Every wait has a bound."""

    request_seconds: int = Field(29, ge=1, le=900)
    """Synchronous request timeout (API Gateway HTTP APIs allow at most 30 s)."""
    run_seconds: int = Field(300, ge=1, le=86_400)
    """One agent run: Lambda function timeout, worker task timeout."""
    idle_seconds: int = Field(300, ge=1, le=4_000)
    """Idle connection timeout at the load balancer (long enough for WebSocket sessions)."""


class BudgetConfig(Section):
    """Monthly budget with alerts. Cost: AWS Budgets are free for the first two."""

    monthly_limit_usd: float = Field(100, gt=0)
    """Monthly spend limit in USD; must be positive."""
    alert_thresholds_percent: list[int] = [80, 100]
    """Actual-spend alerts, percent of the limit."""
    forecast_threshold_percent: int | None = Field(100, ge=1, le=1_000)
    """Alert when forecasted spend crosses this percent. None: no forecast alert."""
    emails: list[str] = []
    """Who gets alerts (also the alarm topic's subscribers)."""

    @field_validator("alert_thresholds_percent")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("needs at least one threshold, e.g. [80, 100]")
        for threshold in value:
            if not 1 <= threshold <= 1_000:
                raise ValueError(f"thresholds are percents between 1 and 1000, got {threshold}")
        return sorted(set(value))

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not _EMAIL.match(email):
                raise ValueError(f"{email!r} is not an email address")
        return value


class ObservabilityConfig(Section):
    """Logs, traces and alarms."""

    log_retention_days: int = 30
    """Log retention (a CloudWatch-allowed value: 1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."""
    tracing: bool = True
    """X-Ray / Cloud Trace tracing on functions and services."""
    alarm_emails: list[str] = []
    """Subscribers of the alarm topic (in addition to budget.emails)."""

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            allowed = ", ".join(map(str, CLOUDWATCH_RETENTION_DAYS))
            raise ValueError(f"must be one of {allowed}; got {value}")
        return value


class BackupConfig(Section):
    """Backups of the database and state tables."""

    retention_days: int = Field(35, ge=1, le=36_500)
    """How long backups are kept."""
    schedule: str = "cron(0 3 * * ? *)"
    """AWS Backup schedule expression (daily at 03:00 UTC by default)."""


class AwsOptions(Section):
    """AWS-only settings."""

    vpc_cidr: str = Field("10.40.0.0/16", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")
    """VPC address range (/16 to /24)."""
    availability_zones: int = Field(2, ge=2, le=3)
    """AZs for subnets. Production uses one NAT gateway per AZ; others share one."""
    certificate_arn: str | None = None
    """ACM certificate for HTTPS on the load balancer. Without it the ALB serves HTTP only."""
    domain_name: str | None = None
    """Custom domain for the public endpoint."""
    waf: bool = True
    """Attach a WAF web ACL (rate-based rule + AWS managed rules) to the public ALB."""
    vpc_endpoints: bool = True
    """Interface/gateway endpoints for AWS APIs so their traffic skips NAT."""


class GcpOptions(Section):
    """GCP-only settings."""

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    """GCP project id."""
    billing_account: str | None = Field(None, pattern=r"^[A-F0-9]{6}-[A-F0-9]{6}-[A-F0-9]{6}$")
    """Cloud Billing account id (`012345-6789AB-CDEF01`) the budget is created on. None: no
    budget (a warning says so); budgets live on the billing account, not the project."""
    database_password: SecretRef = SecretRef(config="databasePassword")
    """Password of the Cloud SQL application user (hybrid), e.g. `{config: databasePassword}`;
    copied into Secret Manager and handed to the services as PGPASSWORD by reference."""


class KubernetesOptions(Section):
    """Kubernetes-only settings (any cluster; the provider comes from the program)."""

    namespace: str = Field("agent", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """Namespace to create and deploy into."""
    ingress_class: str = "nginx"
    """IngressClass name; annotations for nginx and traefik are set."""
    keda_namespace: str = Field("keda", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """Where the KEDA operator runs (its Helm chart's default): the Redis NetworkPolicy admits its
    pods (`app: keda-operator`) so it can read the stream it scales the workers on."""
    prometheus_namespace: str = Field("monitoring", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """Where Prometheus runs: the API's NetworkPolicy admits it to the metrics port."""
    host: str | None = None
    """Public host name of the ingress."""
    tls_secret: str | None = None
    """TLS secret for `host`. Default: a cert-manager issued one when host is set."""
    storage_class: str | None = None
    """StorageClass for Redis/PostgreSQL volumes. Default: the cluster's default."""
    external_secrets_store: str | None = None
    """ClusterSecretStore of the external-secrets operator; when set, secrets are ExternalSecrets."""
    keda: bool = True
    """KEDA installed: workers scale on queue length and cron; otherwise an HPA on CPU."""
    cluster_issuer: str | None = None
    """cert-manager ClusterIssuer that issues `tls_secret` for `host` (e.g. `letsencrypt-prod`).
    None: the TLS secret must already exist."""
    ingress_namespace: str = "ingress-nginx"
    """Namespace of the ingress controller pods: the only source NetworkPolicies admit to the API."""
    cpu_request: str = Field("250m", pattern=r"^\d+(\.\d+)?m?$")
    """CPU request per API/worker pod (what the scheduler reserves and the HPA measures against)."""
    memory_request: str = Field("512Mi", pattern=r"^\d+(Ki|Mi|Gi)$")
    """Memory request per API/worker pod."""
    cpu_limit: str = Field("1000m", pattern=r"^\d+(\.\d+)?m?$")
    """CPU limit per API/worker pod."""
    memory_limit: str = Field("2Gi", pattern=r"^\d+(Ki|Mi|Gi)$")
    """Memory limit per API/worker pod; above it the pod is OOM-killed and its task redelivered."""
    image_repository: str | None = None
    """Where the built agent_app image is pushed (`ghcr.io/acme/agent-app`, an ECR or Artifact
    Registry repository). Required when app.image is not set."""
    registry_username: str | None = None
    """Registry login user. None: the machine's Docker credential helpers."""
    registry_password: SecretRef | None = None
    """Registry password/token, e.g. `{config: registryToken}`."""
    image_pull_secret: str | None = None
    """Existing `kubernetes.io/dockerconfigjson` Secret the pods pull with (private registries)."""
    redis_password: SecretRef = SecretRef(config="redisPassword")
    """Password of the in-cluster Redis (`pulumi config set --secret redisPassword ...`)."""
    postgres_password: SecretRef = SecretRef(config="postgresPassword")
    """Password of the in-cluster PostgreSQL application user."""
    external_redis_url: SecretRef | None = None
    """Use an existing Redis (`rediss://:pw@host:6379/0`) instead of the in-cluster StatefulSet."""
    external_database_url: SecretRef | None = None
    """Use an existing PostgreSQL with pgvector (`postgresql://...`) instead of the in-cluster one."""
    postgres_operator: Literal["statefulset", "cloudnativepg"] = "statefulset"
    """`statefulset`: one pgvector pod; `cloudnativepg`: a CloudNativePG Cluster (operator required;
    replicas, backups and failover from the operator)."""
    redis_storage_gb: int = Field(5, ge=1, le=1_000)
    """Redis PVC size (AOF persistence)."""
    postgres_storage_gb: int = Field(20, ge=1, le=10_000)
    """PostgreSQL PVC size."""
    qdrant_storage_gb: int = Field(10, ge=1, le=10_000)
    """Qdrant PVC size (vectors.backend: qdrant)."""
    vpa_mode: Literal["Off", "Initial", "Recreate"] = "Off"
    """VerticalPodAutoscaler update mode. `Off` only recommends, so it never fights the HPA."""
    llm_egress_cidrs: list[str] = ["0.0.0.0/0"]
    """Where pods may open HTTPS (443) connections: the LLM provider. Private ranges and the cloud
    metadata address are always excluded from 0.0.0.0/0."""
    redis_image: str | None = None
    """In-cluster Redis image. None: the pinned default tag. Production: pin a digest
    (`redis@sha256:...`), pulled `IfNotPresent`; a tag is pulled `Always`."""
    postgres_image: str | None = None
    """In-cluster PostgreSQL image (statefulset: pgvector; cloudnativepg: the operand). Same pinning advice."""
    qdrant_image: str | None = None
    """Qdrant image (vectors.backend: qdrant). Same pinning advice."""

    @field_validator("redis_image", "postgres_image", "qdrant_image")
    @classmethod
    def _pinned_data_image(cls, value: str | None) -> str | None:
        if value is not None and (value.endswith(":latest") or ("@" not in value and ":" not in value.rsplit("/", 1)[-1])):
            raise ValueError(f"image must be pinned to a tag or digest other than latest, got {value!r}")
        return value


class DockerOptions(Section):
    """Docker (one machine) settings."""

    api_host_port: int = Field(8000, ge=1024, le=65_535)
    """Host port the API is published on."""
    bind_address: str = "127.0.0.1"
    """Host address the API port binds; loopback keeps it off the network."""
    redis_password: SecretRef = SecretRef(config="redisPassword")
    """Password of the local Redis container."""
    postgres_password: SecretRef = SecretRef(config="postgresPassword")
    """Password of the local PostgreSQL container."""


class DeploymentConfig(Section):
    """One AI-agent deployment: everything a stack needs, validated before anything is built."""

    _from_stack: bool = PrivateAttr(False)
    # Set by `load_stack_deployment`: errors found while building from this config are the stack's.

    cloud: Cloud
    """Where it runs: aws, gcp, kubernetes (any cluster) or docker (one machine)."""
    topology: Topology
    """serverless (functions + queue), container (services + workers) or hybrid (container plus
    webhook queue, Redis state, PostgreSQL and vectors)."""
    environment: str = Field("dev", pattern=r"^[a-z][a-z0-9-]{1,15}$")
    """Environment name (dev, staging, prod...). Tags every resource."""
    production: bool | None = None
    """Production switches (multi-AZ, deletion protection, per-AZ NAT). Default: environment is prod/production."""
    regions: RegionsConfig = RegionsConfig()
    app: AppConfig = AppConfig()
    queue: QueueConfig = QueueConfig()
    state: StateConfig = StateConfig()
    database: DatabaseConfig = DatabaseConfig()
    vectors: VectorConfig = VectorConfig()
    scaling: ScalingConfig = ScalingConfig()
    rate_limits: RateLimitConfig = RateLimitConfig()
    timeouts: TimeoutConfig = TimeoutConfig()
    budget: BudgetConfig = BudgetConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    backup: BackupConfig = BackupConfig()
    tags: dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]] = {}
    """Extra tags on every taggable resource (owner, cost-center...). project, stack and
    environment are always added."""
    aws: AwsOptions | None = None
    gcp: GcpOptions | None = None
    kubernetes: KubernetesOptions | None = None
    docker: DockerOptions | None = None

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} uses the reserved aws: prefix")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> DeploymentConfig:
        problems: list[str] = []
        cloud, topology = self.cloud, self.topology
        if topology == "serverless" and cloud in ("kubernetes", "docker"):
            problems.append(
                f"topology: serverless is not available on {cloud}; use topology: container (workers scale to "
                "zero with KEDA) or cloud: aws / gcp for functions")
        for option in ("aws", "gcp", "kubernetes", "docker"):
            if getattr(self, option) is not None and option != cloud:
                problems.append(f"{option}: {option} options are set but cloud is {cloud}; remove them or set cloud: {option}")
        if cloud == "gcp" and self.gcp is None:
            problems.append("gcp.project: required when cloud is gcp")
        if cloud in ("aws", "gcp"):
            for index, region in enumerate([self.regions.primary, *self.regions.disaster_recovery]):
                problem = region_problem(cloud, region)
                if problem:
                    where = "regions.primary" if index == 0 else f"regions.disaster_recovery[{index - 1}]"
                    problems.append(f"{where}: {problem}")
        all_regions = [self.regions.primary, *self.regions.disaster_recovery]
        if len(set(all_regions)) != len(all_regions):
            problems.append("regions.disaster_recovery: must differ from the primary region and from each other")
        if cloud == "docker" and self.regions.disaster_recovery:
            problems.append("regions.disaster_recovery: docker runs on one machine; remove the DR regions")
        if cloud == "aws" and topology == "serverless":
            if self.timeouts.run_seconds > 900:
                problems.append(f"timeouts.run_seconds: Lambda runs at most 900 s, got {self.timeouts.run_seconds}; "
                                "use topology: container or hybrid for longer runs")
            if self.timeouts.request_seconds > 30:
                problems.append(f"timeouts.request_seconds: API Gateway HTTP APIs allow at most 30 s, got "
                                f"{self.timeouts.request_seconds}; use the webhook path for long runs")
        visibility = self.queue.visibility_timeout_seconds
        if visibility is not None and visibility < self.timeouts.run_seconds:
            problems.append(f"queue.visibility_timeout_seconds: must be at least timeouts.run_seconds "
                            f"({self.timeouts.run_seconds}), got {visibility}; otherwise a running task is redelivered")
        needs_key = {"openai": "AGENT_LLM_API_KEY", "anthropic": "AGENT_LLM_API_KEY"}
        key = needs_key.get(self.app.llm_provider)
        if key and key not in self.app.secrets and not self.app.llm_base_url:
            problems.append(f"app.secrets.{key}: required for llm_provider {self.app.llm_provider}; run "
                            f"`pulumi config set --secret llmApiKey <key>` and add {key}: {{config: llmApiKey}}")
        if self.app.llm_provider == "bedrock" and cloud != "aws":
            problems.append(f"app.llm_provider: bedrock needs cloud: aws, got {cloud}")
        vector_clouds = {"opensearch": ("aws",), "vertex": ("gcp",), "qdrant": ("kubernetes", "docker")}
        allowed = vector_clouds.get(self.vectors.backend)
        if allowed and cloud not in allowed:
            problems.append(f"vectors.backend: {self.vectors.backend} is available on {' / '.join(allowed)}, not "
                            f"{cloud}; use pgvector")
        if self.vectors.backend == "pgvector" and self.database.enabled is False and topology == "hybrid":
            problems.append("vectors.backend: pgvector needs the database; set database.enabled: true or "
                            "vectors.backend: none")
        if cloud == "aws" and topology == "serverless" and self.state.backend in ("firestore", "memorystore"):
            problems.append(f"state.backend: {self.state.backend} is a GCP service; use dynamodb or auto")
        if cloud == "gcp" and self.state.backend == "dynamodb":
            problems.append("state.backend: dynamodb is an AWS service; use firestore, memorystore or auto")
        if self.scaling.max_instances < self.scaling.min_instances:
            problems.append("scaling.max_instances: must be at least min_instances")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # Resolved settings, so every component derives them the same way.
    @property
    def is_production(self) -> bool:
        """Production switches on: explicit `production`, else environment prod/production."""
        return self.production if self.production is not None else self.environment in ("prod", "production")

    @property
    def visibility_timeout_seconds(self) -> int:
        """Explicit value, else 6x the run timeout (AWS's advice), clamped to SQS's 30 s-12 h."""
        if self.queue.visibility_timeout_seconds is not None:
            return self.queue.visibility_timeout_seconds
        return max(30, min(43_200, 6 * self.timeouts.run_seconds))

    @property
    def database_enabled(self) -> bool:
        return self.database.enabled if self.database.enabled is not None else self.topology == "hybrid"

    @property
    def deletion_protection(self) -> bool:
        return self.database.deletion_protection if self.database.deletion_protection is not None else self.is_production

    @property
    def state_backend(self) -> str:
        if self.state.backend != "auto":
            return self.state.backend
        if self.topology == "serverless":
            return "dynamodb" if self.cloud == "aws" else "firestore"
        return "memorystore" if self.cloud == "gcp" else "redis"

    def all_tags(self, project: str, stack: str) -> dict[str, str]:
        """The tags every taggable resource gets."""
        return {"project": project, "stack": stack, "environment": self.environment,
                "managed-by": "pulumi", **self.tags}


def _split_cross_field(lines: list[str]) -> list[str]:
    """Cross-field rules report several problems in one error; give each its own line."""
    out: list[str] = []
    for line in lines:
        head, _, rest = line.partition(": ")
        if head == CONFIG_KEY and "\n" in rest:
            out.extend(f"{CONFIG_KEY}.{part}" for part in rest.split("\n"))
        elif head == CONFIG_KEY:
            out.append(f"{CONFIG_KEY}.{rest}")
        else:
            out.append(line)
    return out


def load_deployment(raw: Any) -> DeploymentConfig:
    """Validate a stack's `deployment` value (a dict, or JSON text as the CLI passes it).

    Raises `ConfigError` listing every problem as `deployment.<path>: <what is wrong>`.
    """
    if raw is None:
        raise ConfigError(f"{CONFIG_KEY}: missing; add `{NAMESPACE}:{CONFIG_KEY}:` with at least cloud and "
                          "topology to the stack file (see stacks/Pulumi.dev.yaml)")
    if isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{CONFIG_KEY}: not valid JSON/YAML structure ({error.msg})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{CONFIG_KEY}: must be a mapping with cloud, topology, ..., got {type(raw).__name__}")
    try:
        return DeploymentConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(_split_cross_field(problems_from_validation_error(error, CONFIG_KEY))) from None


def load_stack_deployment() -> DeploymentConfig:
    """The running stack's `agent-infra:deployment`, validated; errors are marked as stack config."""
    raw = pulumi.Config(NAMESPACE).get(CONFIG_KEY)
    project = pulumi.get_project()
    if raw is None and project != NAMESPACE and pulumi.Config().get(CONFIG_KEY) is not None:
        raise ConfigError(f"{NAMESPACE}:{CONFIG_KEY}: missing, but the stack has {project}:{CONFIG_KEY}; agent-infra "
                          f"reads its own namespace whatever the project is called (as aws:region does): rename the "
                          f"key to `{NAMESPACE}:{CONFIG_KEY}:` in Pulumi.{pulumi.get_stack()}.yaml", origin="stack")
    if isinstance(raw, str) and not raw.lstrip().startswith(("{", "[")):
        raise ConfigError(f"{NAMESPACE}:{CONFIG_KEY}: must be a mapping (cloud, topology, ...), got the string "
                          f"{raw[:40]!r}; write it as YAML keys under the config key, not a quoted string",
                          origin="stack")
    try:
        config = load_deployment(raw)
    except ConfigError as error:
        raise error.from_stack() from None
    config._from_stack = True
    return config


def stack_file_schema() -> dict[str, Any]:
    """JSON Schema for a `Pulumi.<stack>.yaml` file, for editor completion and checks."""
    deployment = DeploymentConfig.model_json_schema(ref_template="#/$defs/{model}")
    defs = deployment.pop("$defs", {})
    defs["DeploymentConfig"] = deployment
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "agent-infra stack file (Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {f"agent-infra:{CONFIG_KEY}": {"$ref": "#/$defs/DeploymentConfig"}},
                "required": [f"agent-infra:{CONFIG_KEY}"],
                "additionalProperties": True,
            },
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
        },
        "required": ["config"],
        "$defs": defs,
    }
