"""An agent session: one turn as an async stream of typed chunks.

``thinking`` -> ``action`` -> ``observation`` (repeated while the model calls tools) -> ``result``,
or an ``error`` chunk (provider down, step bound reached, timeout, interrupted). The stream always
ends with exactly one ``result`` or ``error``; :func:`final_status` maps it to a run status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .bounds import clip
from .llm import Message, ProviderError
from .models import Chunk, RunStatus
from .ports import LLM
from .tools import ToolContext, ToolError, ToolRegistry

SYSTEM_PROMPT = (
    "You are a helpful agent. Use the tools when they help: calculator for arithmetic, "
    "retrieve for related past results, http_fetch for allowlisted web pages. Answer concisely."
)


class AgentSession:
    """Every run is bounded: ``max_steps`` model calls, ``timeout_seconds`` of wall time, each tool
    output cut to ``max_tool_output_bytes``, prior history trimmed (oldest first) to fit
    ``max_prompt_bytes``, and the result cut to ``max_result_bytes``."""

    def __init__(
        self,
        llm: LLM,
        tools: ToolRegistry,
        *,
        max_steps: int = 8,
        timeout_seconds: float = 300.0,
        max_tool_output_bytes: int = 8_192,
        max_prompt_bytes: int = 65_536,
        max_result_bytes: int = 16_384,
    ) -> None:
        self.llm = llm
        self.tools = tools
        self.max_steps = max_steps
        self.timeout_seconds = timeout_seconds
        self.max_tool_output_bytes = max_tool_output_bytes
        self.max_prompt_bytes = max_prompt_bytes
        self.max_result_bytes = max_result_bytes

    def _history(self, history: list[dict[str, Any]], message: str) -> list[Message]:
        """The newest turns (at most 20) that fit the prompt budget left after the system prompt
        and this message."""
        budget = self.max_prompt_bytes - len(SYSTEM_PROMPT.encode()) - len(message.encode())
        kept: list[Message] = []
        for turn in reversed(history[-20:]):
            content = str(turn.get("content", ""))
            budget -= len(content.encode())
            if budget < 0:
                break
            kept.append(Message(role=turn["role"], content=content))
        return kept[::-1]

    async def run(
        self,
        message: str,
        ctx: ToolContext,
        history: list[dict[str, Any]] | None = None,
        should_stop: Callable[[], Awaitable[bool]] | None = None,
    ) -> AsyncIterator[Chunk]:
        """Run one turn. ``history`` is prior ``[{"role", "content"}]`` turns of the session."""
        deadline = time.monotonic() + self.timeout_seconds
        messages = [Message(role="system", content=SYSTEM_PROMPT)]
        messages += self._history(history or [], message)
        messages.append(Message(role="user", content=message))

        def remaining() -> float:
            return deadline - time.monotonic()

        for _step in range(self.max_steps):
            if should_stop is not None and await should_stop():
                yield Chunk(type="error", content={"code": "interrupted", "message": "run interrupted"})
                return
            try:
                async with asyncio.timeout(max(remaining(), 0)):
                    reply = await self.llm.complete(messages, self.tools.specs)
            except TimeoutError:
                yield _timeout(self.timeout_seconds)
                return
            except ProviderError as exc:
                yield Chunk(type="error", content={"code": "provider_unavailable", "message": str(exc)})
                return
            if reply.thinking:
                yield Chunk(type="thinking", content=reply.thinking)
            if not reply.tool_calls:
                yield Chunk(type="result", content=clip(reply.content or "", self.max_result_bytes))
                return
            messages.append(Message(role="assistant", content=reply.content or "", tool_calls=reply.tool_calls))
            for call in reply.tool_calls:
                yield Chunk(type="action", content={"tool": call.name, "arguments": call.arguments, "id": call.id})
                try:
                    async with asyncio.timeout(max(remaining(), 0)):
                        output = await self.tools.call(call.name, call.arguments, ctx)
                    ok = True
                except TimeoutError:
                    yield _timeout(self.timeout_seconds)
                    return
                except ToolError as exc:
                    output, ok = f"error: {exc}", False
                except Exception as exc:  # a tool's bug must not kill the run; the model sees it
                    output, ok = f"error: {type(exc).__name__}: {exc}", False
                output = clip(str(output), self.max_tool_output_bytes)
                yield Chunk(type="observation", content={"tool": call.name, "output": output, "ok": ok, "id": call.id})
                messages.append(Message(role="tool", content=output, tool_call_id=call.id, name=call.name))
        yield Chunk(type="error", content={"code": "max_steps", "message": f"stopped after {self.max_steps} steps"})


def _timeout(seconds: float) -> Chunk:
    return Chunk(type="error", content={"code": "timeout", "message": f"run exceeded {seconds:g}s"})


def final_status(chunk: Chunk | None) -> RunStatus:
    if chunk is None:
        return RunStatus.error
    if chunk.type == "result":
        return RunStatus.success
    code = chunk.content.get("code") if isinstance(chunk.content, dict) else None
    if code == "timeout":
        return RunStatus.timeout
    if code == "interrupted":
        return RunStatus.interrupted
    return RunStatus.error
