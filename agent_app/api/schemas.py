"""Request and response bodies of the HTTP API (they are the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictBool

from ..core.models import ChunkType, RunInput, RunStatus


class RunRequest(RunInput):
    stream: StrictBool = Field(False, description="Answer with server-sent events, one per chunk (a JSON boolean).")


CALLBACK_URL_PATTERN = r"^https?://[A-Za-z0-9._~%-]+(:[0-9]{1,5})?([/?#]\S*)?$"


class WebhookRequest(RunInput):
    callback_url: str | None = Field(
        None,
        max_length=2048,
        pattern=CALLBACK_URL_PATTERN,
        description="Where the result is POSTed (Standard Webhooks signed). https only "
        "(plain http too with AGENT_CALLBACK_ALLOW_PRIVATE, labs and tests).",
    )


class ChunkOut(BaseModel):
    type: ChunkType
    content: Any = None
    id: str | None = Field(None, description="Event id; pass it back as last_event_id to resume.")
    task_id: str | None = None


class RunResult(BaseModel):
    task_id: str
    session_id: str
    status: RunStatus
    result: str | None = None
    error: str | None = None
    chunks: list[ChunkOut]


class TaskAccepted(BaseModel):
    task_id: str
    session_id: str
    status: RunStatus
    location: str


class CallbackView(BaseModel):
    status: str
    attempts: int
    last_error: str | None = None


class TaskView(BaseModel):
    task_id: str
    session_id: str
    status: RunStatus
    result: str | None = None
    error: str | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    callback: CallbackView | None = None


class Problem(BaseModel):
    detail: Any


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
