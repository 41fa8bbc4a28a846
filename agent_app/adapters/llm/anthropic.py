"""Anthropic Messages API with tool use (``thinking`` blocks surface as thinking chunks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from ...core.llm import LLMReply, Message, ProviderError, ToolCall, ToolSpec
from .openai import raise_for_provider


class AnthropicMessages:
    name = "anthropic"

    def __init__(
        self, *, model: str, api_key: str | None, base_url: str, max_tokens: int = 2048, timeout_seconds: float = 120.0
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_seconds, connect=5.0),
            headers={"x-api-key": api_key or "", "anthropic-version": "2023-06-01"},
        )

    @staticmethod
    def _convert(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
        system = "\n".join(m.content for m in messages if m.role == "system")
        out: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "system":
                continue
            if m.role == "tool":
                block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
                if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                    out[-1]["content"].append(block)
                else:
                    out.append({"role": "user", "content": [block]})
            elif m.role == "assistant" and m.tool_calls:
                blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
                blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
                out.append({"role": "assistant", "content": blocks})
            else:
                out.append({"role": m.role, "content": m.content})
        return system, out

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> LLMReply:
        system, converted = self._convert(messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": converted,
            "system": system,
        }
        if tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
            ]
        try:
            response = await self.client.post("/v1/messages", json=body)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        raise_for_provider(response, self.name)
        data = response.json()
        text, thinking, calls = [], [], []
        for block in data.get("content", []):
            if block["type"] == "text":
                text.append(block["text"])
            elif block["type"] == "thinking":
                thinking.append(block.get("thinking", ""))
            elif block["type"] == "tool_use":
                calls.append(ToolCall(id=block["id"], name=block["name"], arguments=block.get("input") or {}))
        return LLMReply(thinking="".join(thinking) or None, content="".join(text) or None, tool_calls=calls)

    async def close(self) -> None:
        await self.client.aclose()
