"""The deterministic offline model: the default provider, no network, no key.

It exercises the whole loop: it thinks aloud, calls one tool (``calculator`` when the message
holds arithmetic, ``http_fetch`` when it holds an https URL, else ``retrieve`` over the memory),
then answers from the tool's observation. The same input always gives the same chunks.
``think_seconds`` simulates model latency per call (benchmarks and kill tests).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from ...core.llm import LLMReply, Message, ToolCall, ToolSpec

_ARITH = re.compile(r"(?:sqrt\()?[-(]*\d[\d.\s+\-*/%()^]*[\d)]")
_URL = re.compile(r"https?://[^\s\"'<>]+")


class OfflineLLM:
    name = "offline"

    def __init__(self, think_seconds: float = 0.0) -> None:
        self.think_seconds = think_seconds

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> LLMReply:
        if self.think_seconds:
            await asyncio.sleep(self.think_seconds)
        available = {t.name for t in tools}
        user = next((m for m in reversed(messages) if m.role == "user"), None)
        question = user.content if user else ""
        last = messages[-1]
        if last.role == "tool":
            return LLMReply(
                thinking=f"The {last.name} tool answered; composing the reply.",
                content=_answer(question, last.name or "", last.content),
            )
        call = _choose_tool(question, available)
        if call is None:
            return LLMReply(thinking="No tool needed.", content=f"You said: {question}")
        return LLMReply(thinking=f"To answer I will use the {call.name} tool.", tool_calls=[call])

    async def close(self) -> None:
        return None


def _choose_tool(question: str, available: set[str]) -> ToolCall | None:
    url = _URL.search(question)
    if url and "http_fetch" in available:
        return ToolCall(id="call_1", name="http_fetch", arguments={"url": url.group(0)})
    match = _ARITH.search(question)
    if match and "calculator" in available and re.search(r"[+\-*/%^]|sqrt", match.group(0)):
        expression = match.group(0).strip().replace("^", "**")
        return ToolCall(id="call_1", name="calculator", arguments={"expression": expression})
    if "retrieve" in available:
        return ToolCall(id="call_1", name="retrieve", arguments={"query": question, "k": 3})
    return None


def _answer(question: str, tool: str, observation: str) -> str:
    if tool == "calculator":
        return f"The answer is {observation}."
    if tool == "retrieve":
        return f"Related past results:\n{observation}\nYou said: {question}"
    return f"{tool} returned:\n{observation[:1000]}"
