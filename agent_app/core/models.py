"""Values that cross the ports: tasks, run statuses and streamed chunks."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class RunStatus(StrEnum):
    """Run statuses in the Agent Protocol's vocabulary."""

    pending = "pending"
    running = "running"
    success = "success"
    error = "error"
    interrupted = "interrupted"
    timeout = "timeout"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RunStatus.success, RunStatus.error, RunStatus.interrupted, RunStatus.timeout})

ChunkType = Literal["thinking", "action", "observation", "result", "error", "status", "heartbeat"]


class Chunk(BaseModel):
    """One step of a run, streamed as ``{"type": ..., "content": ...}``.

    ``thinking`` (text), ``action`` ({"tool", "arguments"}), ``observation`` ({"tool", "output"}),
    ``result`` (text), ``error`` ({"message", "code"}). ``id`` is the event id a reconnecting
    client passes back to resume; ``task_id`` ties the chunk to its run.
    """

    type: ChunkType
    content: Any = None
    id: str | None = None
    task_id: str | None = None


SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RunInput(BaseModel):
    """What a caller asks: a message to an agent session."""

    message: str = Field(min_length=1, max_length=100_000, description="The user's message.")
    session_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Conversation id; a new one is made if omitted.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Echoed in results and callbacks.")


#: The principal of a plain ``AGENT_API_KEYS`` list (and of anonymous loopback dev): every such key
#: shares it, so single-tenant wiring keeps working. Its sessions and idempotency keys are unprefixed.
DEFAULT_PRINCIPAL = "default"


def scoped(principal: str, ident: str) -> str:
    """The store-side name of a caller's session id or idempotency key: ``<principal>/<ident>``.
    Session ids and principals cannot contain ``/``, so two principals never share a name; the
    default principal keeps the bare name (the layout before tenants existed)."""
    return ident if principal == DEFAULT_PRINCIPAL else f"{principal}/{ident}"


class Task(BaseModel):
    """A unit of work: one turn of one session, run once from the user's point of view."""

    id: str = Field(default_factory=lambda: f"task_{uuid.uuid4().hex}")
    session_id: str
    principal: str = DEFAULT_PRINCIPAL
    """Who submitted it: only this principal reads it, its session and its events."""
    message: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    callback_url: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    status: RunStatus = RunStatus.pending
    result: str | None = None
    error: str | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    attempts: int = 0
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def session_key(self) -> str:
        """The session's name in the state store (scoped to the principal)."""
        return scoped(self.principal, self.session_id)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Task:
        return cls.model_validate_json(raw)


class Delivery(BaseModel):
    """A claimed task plus the queue's handle for ack/extend/fail."""

    task: Task
    receipt: str
    attempt: int = 1


class SubmitOutcome(BaseModel):
    """Result of an idempotent submit: the task and whether this call created it."""

    task: Task
    created: bool
    conflict: bool = False
    """Same idempotency key, different body."""


def request_fingerprint(payload: Any) -> str:
    """Stable hash of a request body, to tell a retry (same body) from a misuse (different body)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def new_session_id() -> str:
    return f"sess_{uuid.uuid4().hex}"
