"""Settings: the contract between the app and the infrastructure components.

Every value comes from an environment variable with the ``AGENT_`` prefix (pydantic-settings).
The Pulumi components set exactly the names in :data:`ENV_CONTRACT`; a test on the
infrastructure side imports that set and holds each cloud's wiring against it.

Secrets arrive one of two ways, and both work for every name in :data:`SECRET_NAMES`:

* the value itself, injected by the platform's secret mechanism (ECS ``secrets``,
  Kubernetes ``secretKeyRef``): ``AGENT_LLM_API_KEY=sk-...``;
* a file named like the variable in the secrets directory (:data:`SECRETS_DIR`, or
  ``AGENT_SECRETS_DIR``): ``/var/run/secrets/agent-infra/AGENT_LLM_API_KEY`` holding the value
  (surrounding whitespace, such as a trailing newline, is stripped). Kubernetes mounts the app
  Secret there. Any setting can come from a file this way, not just secrets. A missing directory or
  file is not an error, and an environment variable wins over a file of the same name;
* a Secrets Manager ARN in the same name with ``_SECRET_ARN`` appended (Lambda):
  ``AGENT_LLM_API_KEY_SECRET_ARN=arn:aws:secretsmanager:...``, resolved lazily with boto3 on
  first use and cached. A JSON secret with a single key, or with a key named like the setting
  (``llm_api_key``), is unwrapped.

Secret values are ``SecretStr`` and never logged; outside ``dev`` a placeholder value
(``changeme``, ``placeholder``...) is refused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

#: Names of the secrets; each also accepts ``<NAME>_SECRET_ARN``.
SECRET_NAMES: frozenset[str] = frozenset(
    {
        "AGENT_LLM_API_KEY",
        "AGENT_API_KEYS",
        "AGENT_WEBHOOK_SIGNING_SECRET",
        "AGENT_CALLBACK_SIGNING_SECRET",
        "AGENT_QDRANT_API_KEY",
    }
)

#: The environment variables the infrastructure components may set. This is the contract.
ENV_CONTRACT: frozenset[str] = frozenset(
    {
        "AGENT_ENVIRONMENT",
        "AGENT_REDIS_CA_CERT",
        "AGENT_BIND_HOST",
        "AGENT_PORT",
        "AGENT_QUEUE_BACKEND",
        "AGENT_QUEUE_URL",
        "AGENT_QUEUE_DLQ_URL",
        "AGENT_QUEUE_STREAM",
        "AGENT_QUEUE_GROUP",
        "AGENT_STATE_BACKEND",
        "AGENT_STATE_TABLE",
        "AGENT_STATE_TTL_SECONDS",
        "AGENT_STORE_BACKEND",
        "AGENT_WS_CONNECTIONS_TABLE",
        "AGENT_WS_MANAGEMENT_ENDPOINT",
        "AGENT_REDIS_URL",
        "REDIS_URL",
        "AGENT_DATABASE_URL",
        "DATABASE_URL",
        "AGENT_VECTOR_BACKEND",
        "AGENT_LLM_PROVIDER",
        "AGENT_LLM_MODEL",
        "AGENT_LLM_BASE_URL",
        "AGENT_RUN_TIMEOUT_SECONDS",
        "AGENT_MAX_STEPS",
        "AGENT_RATE_LIMIT_PER_MINUTE",
        "AGENT_MAX_BODY_BYTES",
        "AGENT_WORKER_CONCURRENCY",
        "AGENT_WORKER_HEALTH_PORT",
        "AGENT_WORKER_PROCESSES",
        "AGENT_QDRANT_URL",
        "AGENT_QDRANT_COLLECTION",
        "AGENT_VECTOR_ENDPOINT",
    }
    | SECRET_NAMES
    | {f"{name}_SECRET_ARN" for name in SECRET_NAMES}
)

#: Where settings are read from files (one file per variable, named like it) when the directory
#: exists; ``AGENT_SECRETS_DIR`` overrides it. The Kubernetes components mount the app Secret here.
SECRETS_DIR = "/var/run/secrets/agent-infra"
SECRETS_DIR_ENV = "AGENT_SECRETS_DIR"

#: Health-check paths and port the components wire into load balancers and probes.
HEALTH_LIVENESS_PATH = "/healthz"
HEALTH_READINESS_PATH = "/readyz"
DEFAULT_PORT = 8000
#: Conventional port of ``agent-app worker --health-port`` (``AGENT_WORKER_HEALTH_PORT``).
DEFAULT_WORKER_HEALTH_PORT = 8001

_PLACEHOLDERS = {"changeme", "change-me", "placeholder", "secret", "password", "xxx", "todo", "dummy"}


class Settings(BaseSettings):
    """All knobs of the app. Field ``foo`` is read from ``AGENT_FOO``."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", populate_by_name=True)

    environment: Literal["dev", "staging", "prod"] = "dev"
    """Deployment environment. Outside ``dev`` keys are mandatory and placeholders refused."""
    bind_host: str = "127.0.0.1"
    """Address ``agent-app serve`` binds. Loopback may run without keys (with a loud warning)."""
    port: int = Field(DEFAULT_PORT, ge=1, le=65_535)

    queue_backend: Literal["memory", "redis", "sqs", "pubsub"] = "memory"
    queue_url: str | None = None
    """SQS queue URL (``queue_backend=sqs``)."""
    queue_dlq_url: str | None = None
    queue_stream: str = "agent:tasks"
    """Redis stream holding tasks (``queue_backend=redis``); the DLQ is ``<stream>:dlq``."""
    queue_group: str = "agent-workers"
    """Redis consumer group shared by all workers."""
    queue_claim_timeout_seconds: float = Field(30.0, gt=0)
    """A delivery whose lease has not been extended for this long is reclaimed by another worker.
    Live workers extend their lease every third of it, so long runs are never re-executed."""
    queue_max_attempts: int = Field(3, ge=1)
    """Deliveries before a task moves to the dead-letter place (``agent-app dlq list``)."""

    state_backend: Literal["memory", "redis", "dynamodb"] = "memory"
    state_table: str | None = None
    """DynamoDB table for session state (``state_backend=dynamodb``)."""
    state_ttl_seconds: int = Field(86_400, ge=60)
    """Expiry of session state, streamed events and idempotency keys (at least 24 h for keys)."""
    store_backend: Literal["auto", "sql", "dynamodb"] = "auto"
    """Where tasks, results and callbacks live. ``auto``: the DynamoDB state table when
    ``state_backend=dynamodb`` and no database URL is set (serverless has no disk), else SQL."""
    ws_connections_table: str | None = None
    """DynamoDB table of open API Gateway WebSocket connections (``websocket_handler``)."""
    ws_management_endpoint: str | None = None
    """API Gateway management endpoint override; default ``https://<domainName>/<stage>`` of the event."""

    redis_url: str | None = Field(None, validation_alias=AliasChoices("AGENT_REDIS_URL", "REDIS_URL"))
    redis_ca_cert: str | None = None
    """PEM of the CA that signed the Redis server's TLS certificate, for ``rediss://`` URLs whose
    server certificate no public CA signed (GCP Memorystore's own CA). Default: the system store."""
    database_url: str = Field(
        "sqlite+aiosqlite:///./agent_app.db",
        validation_alias=AliasChoices("AGENT_DATABASE_URL", "DATABASE_URL"),
    )
    """SQLAlchemy URL; ``postgresql://`` is rewritten to the asyncpg driver."""
    vector_backend: Literal["memory", "pgvector", "qdrant", "opensearch"] = "memory"
    """Vector memory: ``memory`` (embedded), ``pgvector`` (the SQL database), ``qdrant``
    (``AGENT_QDRANT_URL``, REST API), ``opensearch`` (OpenSearch Serverless at
    ``AGENT_VECTOR_ENDPOINT``, SigV4-signed with the default AWS credential chain)."""
    qdrant_url: str | None = None
    """Qdrant REST endpoint, e.g. ``http://agent-qdrant:6333`` (``vector_backend=qdrant``)."""
    qdrant_collection: str = "agent_memory"
    vector_endpoint: str | None = None
    """OpenSearch (Serverless) collection endpoint (``vector_backend=opensearch``)."""
    vector_index: str = "agent-memory"
    """OpenSearch k-NN index in that collection, created on start if missing."""

    llm_provider: Literal["offline", "openai", "anthropic", "bedrock"] = "offline"
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_think_seconds: float = Field(0.0, ge=0)
    """Offline model only: simulated latency per model call (benchmarks, kill tests)."""

    run_timeout_seconds: float = Field(300.0, gt=0)
    max_steps: int = Field(8, ge=1, le=100)
    max_tool_output_bytes: int = Field(8_192, ge=256, le=1_048_576)
    """Each tool's output is cut to this before the model (and the stream) sees it."""
    max_prompt_bytes: int = Field(65_536, ge=4_096, le=4_194_304)
    """Prior session history is trimmed, oldest first, to fit this with the new message."""
    max_result_bytes: int = Field(16_384, ge=256, le=1_048_576)
    """A run's result is cut to this."""
    rate_limit_per_minute: int = Field(120, ge=0)
    """Requests per minute per API key (0 disables). Answers 429 with ``Retry-After``. Counted in
    Redis when ``AGENT_REDIS_URL`` is set (shared by every API instance), else per instance."""
    auth_failures_per_minute: int = Field(20, ge=1)
    """Failed authentications per source address and minute before that source gets 429."""
    accept_deadline_seconds: float = Field(2.0, gt=0, le=30)
    """Redis queue: a submit Redis runs later than this after the request (a stall) writes
    nothing, and the API answers 503 once that is certain (deadline + 3 s), never 503 for a task
    that will run. Assumes the API's and Redis's clocks agree within 3 s (NTP)."""
    webhook_principal: str = Field("default", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """The principal owning tasks that arrive as signed webhooks (``AGENT_WEBHOOK_SIGNING_SECRET``)."""
    max_body_bytes: int = Field(1_048_576, ge=1_024)
    session_policy: Literal["enqueue", "reject", "interrupt"] = "enqueue"
    """A second message while a session runs: queue it (default), answer 409, or interrupt."""

    fetch_allowlist: list[str] = Field(default_factory=list)
    """Hosts the ``http_fetch`` tool may reach (exact names or ``*.example.com``)."""
    callback_allow_private: bool = False
    """Allow callbacks/fetches to loopback/private addresses and plain http. Tests and labs only."""
    callback_allowed_ports: list[int] = Field(default_factory=lambda: [443, 8443])
    callback_max_age_seconds: float = Field(86_400 * 1.5, gt=0)
    """Callbacks are retried with full-jitter backoff for this long (at least 24 h)."""
    worker_concurrency: int = Field(4, ge=1, le=256)
    worker_processes: int = Field(1, ge=1, le=64)
    """``agent-app worker`` runs this many worker processes under one supervisor (1: no supervisor)."""
    worker_health_port: int | None = Field(None, ge=0, le=65_535)
    """``agent-app worker`` serves ``/healthz`` and ``/readyz`` on this port (unset: no HTTP)."""
    worker_embedded: bool = True
    """``agent-app serve`` runs an in-process worker (the embedded default)."""

    llm_api_key: SecretStr | None = None
    llm_api_key_secret_arn: str | None = None
    api_keys: SecretStr | None = None
    """Comma-separated API keys (one ``default`` principal, every scope), or a JSON list
    ``[{"key", "principal", "scopes": ["runs", "operator"]}]`` (tenants; ``agent_infra.agent_app.api.security``)."""
    api_keys_secret_arn: str | None = None
    webhook_signing_secret: SecretStr | None = None
    """Inbound ``/webhook`` HMAC (Standard Webhooks). Space-separated values allow rotation."""
    webhook_signing_secret_secret_arn: str | None = None
    callback_signing_secret: SecretStr | None = None
    """Outbound callbacks' ``webhook-signature`` key(s) (``whsec_...`` or raw). First signs; all listed
    sign during a rotation."""
    callback_signing_secret_secret_arn: str | None = None
    qdrant_api_key: SecretStr | None = None
    """Qdrant ``api-key`` header (the Qdrant component's ``QDRANT__SERVICE__API_KEY``)."""
    qdrant_api_key_secret_arn: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then env, then files in the secrets directory (only if it exists: no warning)."""
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings, dotenv_settings)
        directory = Path(os.environ.get(SECRETS_DIR_ENV) or SECRETS_DIR)
        if directory.is_dir():
            sources += (SecretsSettingsSource(settings_cls, secrets_dir=directory),)
        return sources

    @model_validator(mode="after")
    def _no_placeholders(self) -> Settings:
        if self.environment != "dev":
            for name in SECRET_NAMES:
                field = name.removeprefix("AGENT_").lower()
                value: SecretStr | None = getattr(self, field)
                if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
                    raise ValueError(f"{name}: placeholder value refused in {self.environment}; set the real secret")
        return self

    # -- secrets ---------------------------------------------------------------------------------
    def secret(self, field: str) -> str | None:
        """The secret's value: the env value itself, else the ARN resolved once with boto3."""
        value: SecretStr | None = getattr(self, field)
        if value is not None:
            return value.get_secret_value()
        arn: str | None = getattr(self, f"{field}_secret_arn", None)
        if not arn:
            return None
        return _resolve_secret_arn(arn, field)

    def api_key_set(self) -> frozenset[str]:
        """The keys alone (either form of ``AGENT_API_KEYS``): empty means none configured."""
        raw = (self.secret("api_keys") or "").strip()
        if raw.startswith("["):
            try:
                return frozenset(str(e.get("key")) for e in json.loads(raw) if isinstance(e, dict) and e.get("key"))
            except (ValueError, TypeError, AttributeError):
                return frozenset({raw})  # malformed: create_app names the problem
        return frozenset(k.strip() for k in raw.split(",") if k.strip())

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        if url.startswith("sqlite://") and "+aiosqlite" not in url:
            return url.replace("sqlite://", "sqlite+aiosqlite://", 1)
        return url

    def is_loopback_bind(self, host: str | None = None) -> bool:
        host = host or self.bind_host
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


_secret_cache: dict[str, str] = {}
_secret_lock = threading.Lock()


def _resolve_secret_arn(arn: str, field: str) -> str:
    with _secret_lock:
        if arn in _secret_cache:
            return _secret_cache[arn]
        import boto3  # lazily: only the Lambda path needs it

        raw = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        value = _unwrap_json_secret(raw, field)
        _secret_cache[arn] = value
        return value


def _unwrap_json_secret(raw: str, field: str) -> str:
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(doc, dict):
        if field in doc:
            return str(doc[field])
        if len(doc) == 1:
            return str(next(iter(doc.values())))
    return raw


def get_settings() -> Settings:
    return Settings()
