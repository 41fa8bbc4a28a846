"""Core: the session's chunk stream, tools, the SSRF guard and provider resilience."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import AsyncIterator

import pytest
from agent_infra.agent_app.adapters.llm.offline import OfflineLLM
from agent_infra.agent_app.adapters.llm.openai import OpenAIChat
from agent_infra.agent_app.adapters.vector.memory import MemoryVectors
from agent_infra.agent_app.core.llm import ResilientLLM
from agent_infra.agent_app.core.netguard import BlockedDestination, NetPolicy, address_is_public, guarded_request
from agent_infra.agent_app.core.session import AgentSession, final_status
from agent_infra.agent_app.core.tools import ToolContext, ToolError, builtin_tools, safe_eval
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from tests.app.conftest import ServerThread, free_port


async def collect(session: AgentSession, message: str, ctx: ToolContext | None = None) -> list:
    return [c async for c in session.run(message, ctx or ToolContext("s", "t"))]


async def test_offline_session_thinks_acts_observes_answers() -> None:
    chunks = await collect(AgentSession(OfflineLLM(), builtin_tools()), "what is 12*(3+4)?")
    assert [c.type for c in chunks] == ["thinking", "action", "observation", "thinking", "result"]
    assert chunks[1].content["arguments"] == {"expression": "12*(3+4)"}
    assert chunks[2].content["output"] == "84" and chunks[-1].content == "The answer is 84."
    assert final_status(chunks[-1]).value == "success"


async def test_retrieval_from_vector_memory() -> None:
    memory = MemoryVectors()
    await memory.add("a", "Q: capital of France\nA: Paris")
    await memory.add("b", "Q: boiling point of water\nA: 100 C")
    ctx = ToolContext("s", "t", memory=memory)
    chunks = await collect(AgentSession(OfflineLLM(), builtin_tools()), "remind me the capital of France", ctx)
    observation = next(c for c in chunks if c.type == "observation")
    assert observation.content["output"].splitlines()[0].endswith("Q: capital of France")


async def test_step_bound_and_timeout() -> None:
    class Looping(OfflineLLM):
        async def complete(self, messages, tools):  # type: ignore[no-untyped-def]
            from agent_infra.agent_app.core.llm import LLMReply, ToolCall

            return LLMReply(tool_calls=[ToolCall(id="c", name="calculator", arguments={"expression": "1+1"})])

    chunks = await collect(AgentSession(Looping(), builtin_tools(), max_steps=3), "loop")
    assert chunks[-1].type == "error" and chunks[-1].content["code"] == "max_steps"
    slow = AgentSession(OfflineLLM(think_seconds=5), builtin_tools(), timeout_seconds=0.2)
    started = time.monotonic()
    chunks = await collect(slow, "1+1")
    assert chunks[-1].content["code"] == "timeout" and time.monotonic() - started < 2
    assert final_status(chunks[-1]).value == "timeout"


def test_calculator_is_safe() -> None:
    assert safe_eval("2**10 + sqrt(16)") == 1028
    for evil in ("__import__('os').system('id')", "().__class__", "9**999999", "open('x')"):
        with pytest.raises(ToolError):
            safe_eval(evil)


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.0.0.5",
        "172.16.1.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "0.0.0.0",
        "fe80::1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_refused(ip: str) -> None:
    assert not address_is_public(ipaddress.ip_address(ip))


def test_public_address_allowed() -> None:
    assert address_is_public(ipaddress.ip_address("93.184.216.34"))
    assert address_is_public(ipaddress.ip_address("2606:4700::1111"))


@pytest.mark.parametrize(
    "url,why",
    [
        ("https://127.0.0.1/x", "non-public"),
        ("https://169.254.169.254/latest/meta-data/", "non-public"),
        ("https://[::ffff:127.0.0.1]/x", "non-public"),
        ("https://localhost/x", "non-public"),
        ("http://93.184.216.34/x", "plain http"),
        ("https://93.184.216.34:22/x", "port 22"),
        ("ftp://example.com/x", "scheme"),
        ("https://user:pw@93.184.216.34/", "credentials"),
    ],
)
async def test_guard_refuses(url: str, why: str) -> None:
    with pytest.raises(BlockedDestination, match=why):
        await guarded_request("GET", url, NetPolicy())


async def test_http_fetch_tool_needs_allowlist_and_guard() -> None:
    tools = builtin_tools()
    with pytest.raises(ToolError, match="allowlisted"):
        await tools.call("http_fetch", {"url": "https://example.com"}, ToolContext("s", "t"))
    ctx = ToolContext("s", "t", net_policy=NetPolicy(allowed_hosts=frozenset({"localhost"})))
    with pytest.raises(ToolError, match="non-public"):
        await tools.call("http_fetch", {"url": "https://localhost/"}, ctx)
    ctx = ToolContext("s", "t", net_policy=NetPolicy(allowed_hosts=frozenset({"*.example.org"})))
    with pytest.raises(ToolError, match="allowlist"):
        await tools.call("http_fetch", {"url": "https://example.com/"}, ctx)


def fake_openai() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> StreamingResponse:
        has_tool_result = any(m["role"] == "tool" for m in body["messages"])

        async def events() -> AsyncIterator[bytes]:
            if has_tool_result:
                deltas = [{"content": "The answer "}, {"content": "is 3."}]
            else:
                first = {"index": 0, "id": "call_a", "function": {"name": "calculator", "arguments": '{"expr'}}
                rest = {"index": 0, "function": {"arguments": 'ession": "1+2"}'}}
                deltas = [{"tool_calls": [first]}, {"tool_calls": [rest]}]
            for d in deltas:
                yield f"data: {json.dumps({'choices': [{'delta': d}]})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


async def test_openai_compatible_adapter_streams_tool_calls() -> None:
    with ServerThread(fake_openai()) as srv:
        llm = ResilientLLM(OpenAIChat(model="m", api_key="k", base_url=f"{srv.url}/v1"))
        chunks = await collect(AgentSession(llm, builtin_tools()), "add one and two")
        await llm.close()
    assert [c.type for c in chunks] == ["action", "observation", "result"]
    assert chunks[0].content["arguments"] == {"expression": "1+2"} and chunks[-1].content == "The answer is 3."


async def test_provider_down_gives_error_chunk_and_opens_circuit() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    llm = ResilientLLM(
        OpenAIChat(model="m", api_key=None, base_url=dead),
        retries=2,
        base_delay=0.01,
        failure_threshold=2,
        reset_seconds=60,
    )
    session = AgentSession(llm, builtin_tools())
    for _ in range(2):
        chunks = await collect(session, "hi")
        assert [c.type for c in chunks] == ["error"] and chunks[0].content["code"] == "provider_unavailable"
    assert llm.circuit_open
    started = time.monotonic()
    chunks = await collect(session, "hi")
    assert "circuit open" in chunks[0].content["message"] and time.monotonic() - started < 0.1
    await llm.close()
