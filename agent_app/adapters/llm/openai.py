"""OpenAI-compatible chat completions, streamed, with tool calls.

Works with OpenAI and with local servers that speak the same API (vLLM, Ollama, LM Studio):
set ``AGENT_LLM_BASE_URL`` (e.g. ``http://localhost:11434/v1``) and ``AGENT_LLM_MODEL``.
The response is read as server-sent events; tool-call argument fragments are joined per index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from ...core.llm import LLMReply, Message, ProviderError, ToolCall, ToolSpec


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def raise_for_provider(response: httpx.Response, name: str) -> None:
    if response.status_code < 400:
        return
    retryable = response.status_code in (408, 409, 429) or response.status_code >= 500
    raise ProviderError(f"{name}: HTTP {response.status_code}", retryable=retryable, retry_after=_retry_after(response))


class OpenAIChat:
    name = "openai"

    def __init__(self, *, model: str, api_key: str | None, base_url: str, timeout_seconds: float = 120.0) -> None:
        self.model = model
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(timeout_seconds, connect=5.0)
        )

    def _messages(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in messages:
            item: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:
                item["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                    for c in m.tool_calls
                ]
            if m.role == "tool":
                item["tool_call_id"] = m.tool_call_id
            out.append(item)
        return out

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> LLMReply:
        body: dict[str, Any] = {"model": self.model, "messages": self._messages(messages), "stream": True}
        if tools:
            body["tools"] = [{"type": "function", "function": t.model_dump()} for t in tools]
        content: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        try:
            async with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_provider(response, self.name)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    for choice in event.get("choices", []):
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            content.append(delta["content"])
                        if delta.get("reasoning_content"):
                            reasoning.append(delta["reasoning_content"])
                        for tc in delta.get("tool_calls") or []:
                            slot = calls.setdefault(int(tc.get("index", 0)), {"id": "", "name": "", "args": ""})
                            slot["id"] = tc.get("id") or slot["id"]
                            fn = tc.get("function") or {}
                            slot["name"] += fn.get("name") or ""
                            slot["args"] += fn.get("arguments") or ""
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        tool_calls = []
        for index in sorted(calls):
            slot = calls[index]
            try:
                args = json.loads(slot["args"] or "{}")
            except ValueError:
                args = {"_raw": slot["args"]}
            tool_calls.append(ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=args))
        return LLMReply(thinking="".join(reasoning) or None, content="".join(content) or None, tool_calls=tool_calls)

    async def close(self) -> None:
        await self.client.aclose()
