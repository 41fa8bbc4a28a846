"""The LLM port's message types, and the resilience wrapper every provider runs behind.

Retries with full-jitter backoff and a circuit breaker live here as a wrapper
(:class:`ResilientLLM`), not inside each adapter: adapters raise :class:`ProviderError`
(``retryable`` or not) and the wrapper decides. When the breaker is open a call fails at once
with :class:`ProviderUnavailable`, which the session turns into an ``error`` chunk, never a hang.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    """JSON Schema of the arguments object."""


class LLMReply(BaseModel):
    """One model turn: optional visible reasoning, then either tool calls or a final answer."""

    thinking: str | None = None
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ProviderError(RuntimeError):
    """A provider call failed. ``retryable`` for 429/5xx/network; ``retry_after`` if the provider said."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """Retries exhausted or circuit open: the user gets an ``error`` chunk."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class ResilientLLM:
    """Wraps an LLM adapter with retries (full-jitter exponential backoff) and a circuit breaker.

    The breaker opens after ``failure_threshold`` consecutive failed calls and stays open for
    ``reset_seconds``; then one trial call is let through (half-open).
    """

    def __init__(
        self,
        inner: Any,
        *,
        retries: int = 3,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
    ) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "llm")
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def circuit_open(self) -> bool:
        return self._opened_at is not None and time.monotonic() - self._opened_at < self.reset_seconds

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> LLMReply:
        if self.circuit_open:
            raise ProviderUnavailable(f"{self.name}: circuit open after repeated failures; retry later")
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                reply: LLMReply = await self.inner.complete(messages, tools)
            except ProviderError as exc:
                last = exc
                if not exc.retryable or attempt == self.retries:
                    break
                delay = exc.retry_after or random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
                await asyncio.sleep(delay)
                continue
            self._failures = 0
            self._opened_at = None
            return reply
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._opened_at = time.monotonic()
        raise ProviderUnavailable(f"{self.name}: provider unavailable: {last}")

    async def close(self) -> None:
        await self.inner.close()
