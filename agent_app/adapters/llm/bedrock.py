"""AWS Bedrock Converse API with tool use, through boto3 (run in a thread: boto3 is blocking)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ...core.llm import LLMReply, Message, ProviderError, ToolCall, ToolSpec

_RETRYABLE = {
    "ThrottlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelNotReadyException",
    "ModelTimeoutException",
}


class BedrockConverse:
    name = "bedrock"

    def __init__(self, *, model: str, client: Any = None) -> None:
        import boto3

        self.model = model
        self.client = client or boto3.client("bedrock-runtime")

    @staticmethod
    def _convert(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        system = [{"text": m.content} for m in messages if m.role == "system" and m.content]
        out: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "system":
                continue
            if m.role == "tool":
                block = {"toolResult": {"toolUseId": m.tool_call_id, "content": [{"text": m.content}]}}
                if out and out[-1]["role"] == "user":
                    out[-1]["content"].append(block)
                else:
                    out.append({"role": "user", "content": [block]})
            elif m.role == "assistant":
                blocks: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
                blocks += [{"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}} for c in m.tool_calls]
                out.append({"role": "assistant", "content": blocks})
            else:
                out.append({"role": "user", "content": [{"text": m.content}]})
        return system, out

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> LLMReply:
        from botocore.exceptions import BotoCoreError, ClientError

        system, converted = self._convert(messages)
        kwargs: dict[str, Any] = {"modelId": self.model, "messages": converted, "system": system}
        if tools:
            kwargs["toolConfig"] = {
                "tools": [
                    {"toolSpec": {"name": t.name, "description": t.description, "inputSchema": {"json": t.parameters}}}
                    for t in tools
                ]
            }
        try:
            data = await asyncio.to_thread(self.client.converse, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ProviderError(f"bedrock: {code}: {exc}", retryable=code in _RETRYABLE) from exc
        except BotoCoreError as exc:
            raise ProviderError(f"bedrock: {exc}") from exc
        text, thinking, calls = [], [], []
        for block in data["output"]["message"]["content"]:
            if "text" in block:
                text.append(block["text"])
            elif "reasoningContent" in block:
                thinking.append(block["reasoningContent"].get("reasoningText", {}).get("text", ""))
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(ToolCall(id=use["toolUseId"], name=use["name"], arguments=use.get("input") or {}))
        return LLMReply(thinking="".join(thinking) or None, content="".join(text) or None, tool_calls=calls)

    async def close(self) -> None:
        return None
