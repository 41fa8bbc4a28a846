"""Build the adapters the settings name, and the service over them.

Adding a backend: implement the port in ``adapters/<port>/<name>.py`` and add one branch here.
SQS and DynamoDB are imported from ``adapters/queue/sqs.py`` and ``adapters/state/dynamodb.py``
when selected.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from agent_app.adapters.llm.offline import OfflineLLM
from agent_app.adapters.queue.memory import MemoryQueue
from agent_app.adapters.state.memory import MemoryState
from agent_app.adapters.vector.memory import MemoryVectors
from agent_app.core.llm import ResilientLLM
from agent_app.core.netguard import NetPolicy
from agent_app.core.ports import LLM, BackendUnavailable, StateStore, TaskQueue, TaskStore, VectorMemory
from agent_app.core.service import AgentService
from agent_app.core.tools import builtin_tools
from agent_app.settings import Settings

log = logging.getLogger("agent_app")


class ConfigurationError(RuntimeError):
    """A setting names a backend that cannot be built; the message names the variable."""


@dataclass
class Container:
    settings: Settings
    queue: TaskQueue
    state: StateStore
    store: TaskStore
    vectors: VectorMemory
    llm: LLM
    service: AgentService

    async def start(self) -> None:
        await self.store.init()
        init = getattr(self.vectors, "init", None)
        if init is not None:
            await init()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, dep in (
            ("queue", self.queue),
            ("state", self.state),
            ("store", self.store),
            ("vectors", self.vectors),
        ):
            try:
                await dep.ping()
                checks[name] = "ok"
            except BackendUnavailable as exc:
                checks[name] = f"unavailable: {exc}"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}: {exc}"
        return checks

    def fetch_policy(self) -> NetPolicy:
        s = self.settings
        return NetPolicy(
            allow_private=s.callback_allow_private,
            allowed_ports=frozenset(s.callback_allowed_ports),
            allowed_hosts=frozenset(s.fetch_allowlist),
        )

    def callback_policy(self) -> NetPolicy:
        s = self.settings
        return NetPolicy(
            allow_private=s.callback_allow_private,
            allowed_ports=frozenset(s.callback_allowed_ports),
            max_bytes=65_536,
            timeout_seconds=15.0,
        )

    async def close(self) -> None:
        for dep in (self.queue, self.state, self.store, self.vectors, self.llm):
            try:
                await dep.close()
            except Exception as exc:
                log.debug("close %s: %s", type(dep).__name__, exc)


def _need_redis(settings: Settings, var: str) -> str:
    if not settings.redis_url:
        raise ConfigurationError(f"{var}=redis needs AGENT_REDIS_URL (or REDIS_URL), e.g. redis://localhost:6379/0")
    return settings.redis_url


def _optional(module: str, cls: str, var: str) -> Any:
    try:
        return getattr(importlib.import_module(module, __package__), cls)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{var}: backend module {module}.{cls} is not available: {exc}") from exc


def build_queue(settings: Settings) -> TaskQueue:
    if settings.queue_backend == "memory":
        return MemoryQueue(max_attempts=settings.queue_max_attempts)
    if settings.queue_backend == "redis":
        from agent_app.adapters.queue.redis_streams import RedisStreamsQueue

        return RedisStreamsQueue.from_url(
            _need_redis(settings, "AGENT_QUEUE_BACKEND"),
            stream=settings.queue_stream,
            group=settings.queue_group,
            claim_timeout_seconds=settings.queue_claim_timeout_seconds,
            max_attempts=settings.queue_max_attempts,
            ca_cert=settings.redis_ca_cert,
        )
    if settings.queue_backend == "sqs":
        if not settings.queue_url:
            raise ConfigurationError("AGENT_QUEUE_BACKEND=sqs needs AGENT_QUEUE_URL")
        queue: TaskQueue = _optional(".adapters.queue.sqs", "SqsQueue", "AGENT_QUEUE_BACKEND")(settings)
        return queue
    raise ConfigurationError(f"AGENT_QUEUE_BACKEND={settings.queue_backend}: not implemented in this build")


def build_state(settings: Settings) -> StateStore:
    if settings.state_backend == "memory":
        return MemoryState()
    if settings.state_backend == "redis":
        from agent_app.adapters.state.redis import RedisState

        return RedisState.from_url(_need_redis(settings, "AGENT_STATE_BACKEND"), ca_cert=settings.redis_ca_cert,
                                   ttl_seconds=settings.state_ttl_seconds)
    if not settings.state_table:
        raise ConfigurationError("AGENT_STATE_BACKEND=dynamodb needs AGENT_STATE_TABLE")
    state: StateStore = _optional(".adapters.state.dynamodb", "DynamoState", "AGENT_STATE_BACKEND")(settings)
    return state


def build_store(settings: Settings) -> Any:
    """SQL (SQLite by default, PostgreSQL), or the DynamoDB state table on serverless."""
    backend = settings.store_backend
    if backend == "auto":
        explicit_db = bool({"database_url"} & settings.model_fields_set)
        backend = "dynamodb" if settings.state_backend == "dynamodb" and not explicit_db else "sql"
    if backend == "dynamodb":
        if not settings.state_table:
            raise ConfigurationError("AGENT_STORE_BACKEND=dynamodb needs AGENT_STATE_TABLE")
        return _optional(".adapters.store.dynamodb", "DynamoStore", "AGENT_STORE_BACKEND")(settings)
    # Imported here: SQLAlchemy costs ~200 ms of import, which serverless (DynamoDB) never needs.
    from agent_app.adapters.store.sql import SqlStore

    return SqlStore(settings.sqlalchemy_url)


def build_vectors(settings: Settings) -> VectorMemory:
    if settings.vector_backend == "pgvector":
        from agent_app.adapters.vector.pgvector import PgVectorMemory

        return PgVectorMemory(settings.sqlalchemy_url)
    if settings.vector_backend == "qdrant":
        if not settings.qdrant_url:
            raise ConfigurationError("AGENT_VECTOR_BACKEND=qdrant needs AGENT_QDRANT_URL, e.g. http://qdrant:6333")
        from agent_app.adapters.vector.qdrant import QdrantMemory

        return QdrantMemory(
            settings.qdrant_url,
            collection=settings.qdrant_collection,
            api_key=settings.secret("qdrant_api_key"),
        )
    if settings.vector_backend == "opensearch":
        if not settings.vector_endpoint:
            raise ConfigurationError(
                "AGENT_VECTOR_BACKEND=opensearch needs AGENT_VECTOR_ENDPOINT, e.g. https://<id>.<region>.aoss.amazonaws.com"
            )
        from agent_app.adapters.vector.opensearch import OpenSearchMemory

        try:
            return OpenSearchMemory(settings.vector_endpoint, index=settings.vector_index)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
    return MemoryVectors()


def build_llm(settings: Settings) -> LLM:
    provider = settings.llm_provider
    if provider == "offline":
        inner: Any = OfflineLLM(think_seconds=settings.llm_think_seconds)
    elif provider == "openai":
        from agent_app.adapters.llm.openai import OpenAIChat

        inner = OpenAIChat(
            model=settings.llm_model or "gpt-4o-mini",
            api_key=settings.secret("llm_api_key"),
            base_url=settings.llm_base_url or "https://api.openai.com/v1",
        )
    elif provider == "anthropic":
        from agent_app.adapters.llm.anthropic import AnthropicMessages

        inner = AnthropicMessages(
            model=settings.llm_model or "claude-sonnet-4-5",
            api_key=settings.secret("llm_api_key"),
            base_url=settings.llm_base_url or "https://api.anthropic.com",
        )
    else:
        from agent_app.adapters.llm.bedrock import BedrockConverse

        inner = BedrockConverse(model=settings.llm_model or "anthropic.claude-3-5-haiku-20241022-v1:0")
    return ResilientLLM(inner)


def build(settings: Settings | None = None) -> Container:
    settings = settings or Settings()
    queue, state = build_queue(settings), build_state(settings)
    store = build_store(settings)
    vectors = build_vectors(settings)
    llm = build_llm(settings)
    container = Container(settings, queue, state, store, vectors, llm, service=None)  # type: ignore[arg-type]
    container.service = AgentService(
        queue=queue,
        state=state,
        store=store,
        llm=llm,
        tools=builtin_tools(),
        memory=vectors,
        max_steps=settings.max_steps,
        run_timeout_seconds=settings.run_timeout_seconds,
        state_ttl_seconds=settings.state_ttl_seconds,
        session_policy=settings.session_policy,
        fetch_policy=container.fetch_policy(),
    )
    return container
