"""The ports: what the core needs from the outside world, as Protocols.

The core and the transports use only these; each adapter under ``agent_app/adapters/<port>/``
implements one of them (one implementation per file). A new backend (SQS, DynamoDB, Pub/Sub...)
is a class with these methods, registered in :mod:`agent_infra.agent_app.wiring`, and must pass the shared
contract suite in ``tests/app/contracts``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from .llm import LLMReply, Message, ToolSpec
from .models import Chunk, Delivery, RunStatus, SubmitOutcome, Task


class BackendUnavailable(RuntimeError):
    """A backing service (Redis, database, provider...) cannot be reached. The API answers 503."""


@runtime_checkable
class TaskQueue(Protocol):
    """At-least-once task queue with leases, idempotent submit and a dead-letter place."""

    async def submit(self, task: Task, idempotency_key: str | None, ttl_seconds: int) -> SubmitOutcome:
        """Durably record and enqueue ``task`` in one atomic step, honouring ``idempotency_key``.

        If the key was seen within ``ttl_seconds``: return the original task with ``created=False``
        (and ``conflict=True`` if ``task.request_hash`` differs). Nothing is half-written on failure:
        raise :class:`BackendUnavailable` and the caller answers 503.
        """
        ...

    async def get(self, task_id: str) -> Task | None:
        """The accepted record of a task (status ``pending`` until a worker reports progress)."""
        ...

    async def claim(self, worker_id: str, lease_seconds: float, block_seconds: float = 1.0) -> Delivery | None:
        """Next task for this worker, hidden from others for ``lease_seconds``; stale leases of dead
        workers are reclaimed first. ``None`` if nothing arrived within ``block_seconds``."""
        ...

    async def extend(self, delivery: Delivery, lease_seconds: float) -> None:
        """Heartbeat: keep the lease while the run is alive, so a long run is never redelivered."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """Done: remove for good."""
        ...

    async def release(self, delivery: Delivery, delay_seconds: float = 0.0, count_attempt: bool = True) -> None:
        """Hand the task back (failure or graceful shutdown). After ``max_attempts`` counted
        failures the task moves to the dead-letter place instead."""
        ...

    async def dead_letters(self, limit: int = 100) -> Sequence[Task]: ...

    async def replay(self, task_id: str | None = None) -> int:
        """Move one (or every) dead-lettered task back to the queue; returns how many."""
        ...

    async def ping(self) -> None:
        """Raise :class:`BackendUnavailable` if the queue cannot be reached."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class StateStore(Protocol):
    """Session state with expiry, the per-session run lock, and the per-session event stream
    that lets any API instance stream a run executing on any worker."""

    async def get_session(self, session_id: str) -> dict[str, Any] | None: ...

    async def put_session(self, session_id: str, state: dict[str, Any], ttl_seconds: int) -> None: ...

    async def acquire_run(self, session_id: str, task_id: str, ttl_seconds: float) -> bool:
        """One active run per session: True if ``task_id`` now holds (or already held) the lock."""
        ...

    async def release_run(self, session_id: str, task_id: str) -> None: ...

    async def active_run(self, session_id: str) -> str | None: ...

    async def request_interrupt(self, session_id: str) -> None: ...

    async def interrupted(self, session_id: str, task_id: str) -> bool:
        """True once an interrupt was requested after ``task_id`` started."""
        ...

    async def publish(self, session_id: str, chunk: Chunk) -> str:
        """Append to the session's event stream; returns the event id."""
        ...

    async def cursor(self, session_id: str) -> str:
        """Id of the newest retained event (``"0-0"`` if none): subscribe after it for new events only."""
        ...

    def subscribe(self, session_id: str, after_id: str | None = None) -> AsyncIterator[Chunk]:
        """Events after ``after_id`` (all retained ones if None), then new ones as they come.
        Yields a ``heartbeat`` chunk when idle so transports can ping clients."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class TaskStore(Protocol):
    """Durable record of tasks and results (SQL), and the callback outbox."""

    async def init(self) -> None:
        """Create or migrate the schema."""
        ...

    async def upsert(self, task: Task) -> None: ...

    async def get(self, task_id: str) -> Task | None: ...

    async def start(self, task: Task, worker_id: str) -> Task | None:
        """Mark running unless already terminal; returns the stored row (terminal means: skip)."""
        ...

    async def finish(
        self,
        task_id: str,
        status: RunStatus,
        result: str | None,
        error: str | None,
        steps: list[dict[str, Any]],
    ) -> bool:
        """Record the outcome once. False if the task was already terminal (a duplicate run)."""
        ...

    async def schedule_callback(self, task_id: str, url: str, payload: dict[str, Any], next_at: float) -> None: ...

    async def due_callbacks(self, now: float, limit: int = 50) -> list[dict[str, Any]]: ...

    async def callback_attempted(
        self,
        callback_id: str,
        *,
        delivered: bool,
        give_up: bool,
        next_at: float | None,
        last_error: str | None,
    ) -> None: ...

    async def callback_status(self, task_id: str) -> dict[str, Any] | None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class VectorMemory(Protocol):
    """Embedding store the agent retrieves past results from."""

    async def add(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None: ...

    async def search(
        self, query: str, k: int = 3, namespace: str | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """``(text, similarity, metadata)``, best first; with ``namespace``, only documents whose
        ``metadata["principal"]`` is it (a missing one counts as ``default``)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class LLM(Protocol):
    """A chat model with tool calling. Adapters raise :class:`agent_infra.agent_app.core.llm.ProviderError`."""

    name: str

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> LLMReply:
        """One model turn: reasoning, then tool calls or a final answer."""
        ...

    async def close(self) -> None: ...
