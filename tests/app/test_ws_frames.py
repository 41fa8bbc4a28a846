"""The agent WebSocket as a person or a browser uses it: plain-text frames, JSON frames, a first
``auth`` frame, and mistakes answered in sentences. Real uvicorn, real ``websockets`` client."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from agent_infra.agent_app.api.app import create_app
from agent_infra.agent_app.settings import Settings
from agent_infra.agent_app.wiring import build
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.app.conftest import ServerThread

KEY = "ws-key-1"


@contextmanager
def serve(tmp_path: Path, **overrides: Any) -> Iterator[str]:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/ws-{uuid.uuid4().hex[:6]}.db",
        "api_keys": KEY,
        "rate_limit_per_minute": 10_000,
    } | overrides
    with ServerThread(create_app(build(Settings(**values)), embedded_worker=True)) as server:
        yield f"ws://127.0.0.1:{server.port}"


async def _until(ws: ClientConnection, *kinds: str) -> list[dict[str, Any]]:
    """Frames up to and including the first of ``kinds`` (heartbeats and status left out)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in ("heartbeat", "status"):
                continue
            seen.append(frame)
            if frame["type"] in kinds:
                return seen


def _session() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


def test_plain_text_frame_is_the_message_and_json_still_works(tmp_path: Path) -> None:
    async def talk(base: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with connect(f"{base}/agent/{_session()}", additional_headers={"X-API-Key": KEY}) as ws:
            await ws.send("what is 6*7")
            plain = await _until(ws, "result", "error")
            await ws.send(json.dumps({"message": "what is 2+3", "metadata": {"ref": "j1"}}))
            as_json = await _until(ws, "result", "error")
            return plain, as_json

    with serve(tmp_path) as base:
        plain, as_json = asyncio.run(talk(base))
    assert plain[0]["type"] == "accepted"
    assert [f["type"] for f in plain[1:]] == ["thinking", "action", "observation", "thinking", "result"]
    assert plain[-1]["content"] == "The answer is 42."
    assert as_json[-1]["content"] == "The answer is 5."


@pytest.mark.parametrize(
    ("frame", "sentence"),
    [
        ('{"message": ""}', "The field 'message' must not be empty."),
        ('{"metadata": {"a": 1}}', "The field 'message' is required."),
        ('{"message": 42}', "The field 'message' is invalid: Input should be a valid string."),
        ('{"message": "hi", "metadata": "x"}', "The field 'metadata' is invalid: Input should be a valid dictionary."),
        ('{"msg": "hi"}', "Unknown field 'msg' in the frame"),
        (
            '{"message": "hi", "policy": "now"}',
            "The field 'policy' is 'now'; it must be one of enqueue, reject, interrupt.",
        ),
        ('{"message": "hi", "type": "shout"}', "The field 'type' is 'shout'; it must be 'message' or 'auth'."),
        ('{"message": "hi"', "The frame starts with '{' but is not valid JSON"),
        ("   ", "The frame is empty"),
    ],
)
def test_mistakes_are_sentences_naming_the_field(tmp_path: Path, frame: str, sentence: str) -> None:
    async def send(base: str) -> dict[str, Any]:
        async with connect(f"{base}/agent/{_session()}", additional_headers={"X-API-Key": KEY}) as ws:
            await ws.send(frame)
            error = (await _until(ws, "error", "accepted"))[-1]
            await ws.send("still there?")  # the socket stays usable after a mistake
            assert (await _until(ws, "accepted", "error"))[-1]["type"] == "accepted"
            return error

    with serve(tmp_path) as base:
        error = asyncio.run(send(base))
    assert error["type"] == "error" and error["content"]["code"] == "invalid"
    message = error["content"]["message"]
    assert message.startswith(sentence), message
    assert "pydantic" not in message and "http" not in message and "\n" not in message


def test_first_frame_auth_for_browsers(tmp_path: Path) -> None:
    async def good(base: str) -> list[dict[str, Any]]:
        async with connect(f"{base}/agent/{_session()}") as ws:  # no header, no key in the URL
            await ws.send(json.dumps({"type": "auth", "api_key": KEY}))
            assert (await _until(ws, "authenticated"))[-1]["type"] == "authenticated"
            await ws.send("what is 1+1")
            return await _until(ws, "result", "error")

    async def refused(base: str, first: str) -> tuple[dict[str, Any], int]:
        async with connect(f"{base}/agent/{_session()}") as ws:
            await ws.send(first)
            error = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code is not None
            return error, ws.close_code

    with serve(tmp_path) as base:
        assert asyncio.run(good(base))[-1]["content"] == "The answer is 2."
        wrong, code = asyncio.run(refused(base, json.dumps({"type": "auth", "api_key": "nope"})))
        assert code == 4403 and wrong["content"] == {"code": "forbidden", "message": "API key not recognised."}
        missing, code = asyncio.run(refused(base, "what is 1+1"))
        assert code == 4401 and missing["content"]["code"] == "unauthorized"
        assert missing["content"]["message"].startswith('This server needs an API key: send {"type": "auth"')


def test_auth_frame_on_an_authenticated_socket_is_checked_and_answered(tmp_path: Path) -> None:
    async def talk(base: str) -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect(f"{base}/agent/{_session()}", additional_headers={"X-API-Key": KEY}) as ws:
            await ws.send(json.dumps({"type": "auth", "api_key": "nope"}))
            wrong = (await _until(ws, "error", "authenticated"))[-1]
            await ws.send(json.dumps({"type": "auth", "api_key": KEY}))
            right = (await _until(ws, "error", "authenticated"))[-1]
            return wrong, right

    with serve(tmp_path) as base:
        wrong, right = asyncio.run(talk(base))
    assert wrong["content"] == {
        "code": "forbidden",
        "message": "API key not recognised; this connection keeps its first credentials.",
    }
    assert right["type"] == "authenticated"
