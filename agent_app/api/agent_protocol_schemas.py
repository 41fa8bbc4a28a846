"""Request bodies of the LangChain Agent Protocol (openapi.json 0.1.6), as this server reads them.

Field names and enums are the spec's. Options the spec defines but this agent cannot honour are
refused with a sentence (see :func:`agent_infra.agent_app.api.agent_protocol._unsupported`) rather than ignored.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StreamMode = Literal["values", "messages-tuple", "updates", "debug", "custom"]
MultitaskStrategy = Literal["reject", "rollback", "interrupt", "enqueue"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]]
    id: str | None = None
    metadata: dict[str, Any] | None = None


class RunCreate(_Body):
    """``RunCreateStateful`` and ``RunCreateStateless`` (the union of their fields)."""

    agent_id: str | None = None
    input: Any = None
    messages: list[Message] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    webhook: str | None = Field(None, min_length=1, max_length=65536)
    stream_mode: list[StreamMode] | StreamMode = "values"
    stream_subgraphs: bool = False
    on_disconnect: Literal["cancel", "continue"] = "cancel"
    multitask_strategy: MultitaskStrategy = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_completion: Literal["delete", "keep"] = "delete"
    after_seconds: int | None = None


class ThreadCreate(_Body):
    thread_id: uuid.UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadSearchRequest(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
