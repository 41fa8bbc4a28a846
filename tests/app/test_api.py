"""The API end to end: uvicorn on a free port, real httpx and websockets clients, real Redis."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_infra.agent_app.api.app import create_app
from agent_infra.agent_app.settings import Settings
from agent_infra.agent_app.wiring import build
from websockets.asyncio.client import connect

from tests.app.conftest import Receiver, RedisProcess, ServerThread

KEY = "test-key-1"
SECRET = "whsec_" + base64.b64encode(b"callback-secret-bytes").decode()


@contextmanager
def serve(tmp_path: Path, redis: RedisProcess | None, **overrides: Any) -> Iterator[ServerThread]:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/api-{uuid.uuid4().hex[:6]}.db",
        "api_keys": KEY,
        "rate_limit_per_minute": 10_000,
        "queue_claim_timeout_seconds": 5,
    }
    if redis is not None:
        values |= {
            "queue_backend": "redis",
            "state_backend": "redis",
            "redis_url": redis.url,
            "queue_stream": f"api:{uuid.uuid4().hex[:8]}",
        }
    values |= overrides
    container = build(Settings(**values))
    with ServerThread(create_app(container, embedded_worker=True)) as server:
        yield server


def auth(key: str = KEY) -> dict[str, str]:
    return {"X-API-Key": key}


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_webhook_202_worker_signed_callback(tmp_path: Path, redis_server: RedisProcess, receiver: Receiver) -> None:
    # Loopback callbacks are allowed here only by explicit configuration.
    with serve(tmp_path, redis_server, callback_allow_private=True, callback_signing_secret=SECRET) as srv:
        started = time.monotonic()
        r = httpx.post(
            f"{srv.url}/webhook",
            headers=auth(),
            json={"message": "what is 6*7", "callback_url": receiver.url, "metadata": {"ref": "a1"}},
        )
        accept_seconds = time.monotonic() - started
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status"] == "pending" and r.headers["location"] == f"/v1/tasks/{body['task_id']}"
        assert accept_seconds < 2
        assert receiver.event.wait(15), "no callback received"
        hook = receiver.received[0]
        headers = hook["headers"]
        assert headers["webhook-id"] == f"msg_{body['task_id']}"
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + hook["body"]
        expected = base64.b64encode(hmac.new(b"callback-secret-bytes", signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{expected}"
        data = hook["json"]["data"]
        assert (
            data["status"] == "success" and data["result"] == "The answer is 42." and data["metadata"] == {"ref": "a1"}
        )
        task = httpx.get(f"{srv.url}{r.headers['location']}", headers=auth()).json()
        assert task["status"] == "success" and [s["type"] for s in task["steps"]] == [
            "thinking",
            "action",
            "observation",
            "thinking",
            "result",
        ]
        wait_for(
            lambda: (
                httpx.get(f"{srv.url}{r.headers['location']}", headers=auth()).json()["callback"]["status"]
                == "delivered"
            )
        )


def test_callback_retried_until_accepted(tmp_path: Path, redis_server: RedisProcess, receiver: Receiver) -> None:
    receiver.statuses = [503]
    with serve(tmp_path, redis_server, callback_allow_private=True) as srv:
        r = httpx.post(f"{srv.url}/webhook", headers=auth(), json={"message": "1+1", "callback_url": receiver.url})
        loc = f"{srv.url}{r.headers['location']}"
        cb = wait_for(
            lambda: (
                (httpx.get(loc, headers=auth()).json().get("callback") or {}).get("status") == "delivered"
                and httpx.get(loc, headers=auth()).json()["callback"]
            ),
            timeout=15,
        )
        assert cb["attempts"] == 2 and len(receiver.received) == 2
        assert receiver.received[0]["headers"]["webhook-id"] == receiver.received[1]["headers"]["webhook-id"]


def test_callbacks_to_loopback_and_metadata_refused_by_default(
    tmp_path: Path, redis_server: RedisProcess, receiver: Receiver
) -> None:
    with serve(tmp_path, redis_server) as srv:
        r = httpx.post(f"{srv.url}/webhook", headers=auth(), json={"message": "x", "callback_url": receiver.url})
        assert r.status_code == 422 and "callback_url" in r.text  # plain http refused at the door
        locations = []
        for url in (
            "https://127.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data/",
            f"https://127.0.0.1:{receiver.port}/hook",
        ):
            r = httpx.post(f"{srv.url}/webhook", headers=auth(), json={"message": "x", "callback_url": url})
            assert r.status_code == 202
            locations.append(f"{srv.url}{r.headers['location']}")
        for loc in locations:
            cb = wait_for(
                lambda loc=loc: (
                    (httpx.get(loc, headers=auth()).json().get("callback") or {}).get("status") == "failed"
                    and httpx.get(loc, headers=auth()).json()["callback"]
                )
            )
            assert "refused" in cb["last_error"]
        assert receiver.received == []


def test_idempotency_key(tmp_path: Path, redis_server: RedisProcess) -> None:
    with serve(tmp_path, redis_server) as srv:
        headers = auth() | {"Idempotency-Key": "order-1"}
        first = httpx.post(f"{srv.url}/webhook", headers=headers, json={"message": "2+2"})
        second = httpx.post(f"{srv.url}/webhook", headers=headers, json={"message": "2+2"})
        assert first.status_code == second.status_code == 202
        assert first.json()["task_id"] == second.json()["task_id"]
        assert second.headers["idempotent-replayed"] == "true"
        clash = httpx.post(f"{srv.url}/webhook", headers=headers, json={"message": "3+3"})
        assert clash.status_code == 422 and "Idempotency-Key" in clash.json()["detail"]


def test_auth_and_rate_limit(tmp_path: Path) -> None:
    with serve(tmp_path, None, rate_limit_per_minute=3) as srv:
        assert httpx.post(f"{srv.url}/v1/runs", json={"message": "hi"}).status_code == 401
        assert httpx.post(f"{srv.url}/v1/runs", json={"message": "hi"}, headers=auth("nope")).status_code == 403
        bearer = {"Authorization": f"Bearer {KEY}"}
        codes = [httpx.post(f"{srv.url}/v1/runs", json={"message": "1+2"}, headers=bearer) for _ in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 200]
        limited = httpx.post(f"{srv.url}/v1/runs", json={"message": "1+2"}, headers=bearer)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert httpx.get(f"{srv.url}/healthz").status_code == 200  # probes are not authenticated


def test_bodies_oversized_malformed_and_invalid(tmp_path: Path) -> None:
    with serve(tmp_path, None, max_body_bytes=2048) as srv:
        big = httpx.post(f"{srv.url}/v1/runs", headers=auth(), json={"message": "x" * 5000})
        assert big.status_code == 413

        def chunked() -> Iterator[bytes]:
            yield b'{"message": "'
            yield b"y" * 4000
            yield b'"}'

        assert httpx.post(f"{srv.url}/webhook", headers=auth(), content=chunked()).status_code == 413
        bad = httpx.post(
            f"{srv.url}/v1/runs", headers=auth() | {"content-type": "application/json"}, content=b"{not json"
        )
        assert bad.status_code == 422
        missing = httpx.post(f"{srv.url}/webhook", headers=auth(), json={"mesage": "typo"})
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "message"]
        wrong = httpx.post(f"{srv.url}/v1/runs", headers=auth(), json={"message": "hi", "session_id": "bad id!"})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "session_id"]


def test_sync_run_and_sse(tmp_path: Path) -> None:
    with serve(tmp_path, None) as srv:
        r = httpx.post(f"{srv.url}/v1/runs", headers=auth(), json={"message": "sqrt(16)+1"})
        assert r.status_code == 200 and r.json()["result"] == "The answer is 5." and r.json()["status"] == "success"
        events = []
        with httpx.stream("POST", f"{srv.url}/v1/runs?stream=true", headers=auth(), json={"message": "2*3"}) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            for line in s.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
        assert events == ["thinking", "action", "observation", "thinking", "result"]
        spec = httpx.get(f"{srv.url}/openapi.json").json()
        assert {"/v1/runs", "/webhook", "/v1/tasks/{task_id}", "/healthz", "/readyz"} <= set(spec["paths"])
        assert "202" in spec["paths"]["/webhook"]["post"]["responses"]


async def _ws_session(url: str, session: str, message: str, last_event_id: str | None = None) -> list[dict[str, Any]]:
    query = f"?api_key={KEY}" + (f"&last_event_id={last_event_id}" if last_event_id else "")
    out: list[dict[str, Any]] = []
    async with connect(f"ws://{url.removeprefix('http://')}/agent/{session}{query}") as ws:
        if last_event_id is None:
            await ws.send(json.dumps({"message": message}))
        async with asyncio.timeout(15):
            while True:
                msg = json.loads(await ws.recv())
                out.append(msg)
                if msg["type"] in ("result", "error"):
                    return out


def test_websocket_streams_chunks_in_order_and_resumes(tmp_path: Path, redis_server: RedisProcess) -> None:
    with serve(tmp_path, redis_server) as srv:
        session = f"ws-{uuid.uuid4().hex[:6]}"
        got = asyncio.run(_ws_session(srv.url, session, "what is (1+2)*3"))
        kinds = [m["type"] for m in got if m["type"] not in ("heartbeat", "status", "accepted")]
        assert kinds == ["thinking", "action", "observation", "thinking", "result"]
        assert got[0]["type"] == "accepted"
        action = next(m for m in got if m["type"] == "action")
        assert action["content"]["tool"] == "calculator" and action["content"]["arguments"] == {"expression": "(1+2)*3"}
        assert got[-1]["content"] == "The answer is 9."
        # reconnect with the id of the action: the rest is replayed from the session's stream
        resumed = asyncio.run(_ws_session(srv.url, session, "", last_event_id=action["id"]))
        assert [m["type"] for m in resumed if m["type"] != "status"] == ["observation", "thinking", "result"]


def test_websocket_rejects_bad_key(tmp_path: Path) -> None:
    async def attempt(url: str) -> int | None:
        try:
            async with connect(f"ws://{url.removeprefix('http://')}/agent/s1?api_key=wrong") as ws:
                await ws.recv()
        except Exception as exc:
            return getattr(getattr(exc, "response", None), "status_code", None)
        return None

    with serve(tmp_path, None) as srv:
        assert asyncio.run(attempt(srv.url)) == 403


@pytest.mark.slow
def test_redis_outage_readyz_and_webhook_503_then_recovery(tmp_path: Path) -> None:
    redis = RedisProcess()
    redis.start()
    try:
        with serve(tmp_path, redis) as srv:
            assert httpx.get(f"{srv.url}/readyz").status_code == 200
            redis.stop()
            ready = httpx.get(f"{srv.url}/readyz", timeout=15)
            assert ready.status_code == 503 and ready.json()["checks"]["queue"].startswith("unavailable")
            down = httpx.post(
                f"{srv.url}/webhook",
                headers=auth() | {"Idempotency-Key": "during-outage"},
                json={"message": "1+1"},
                timeout=15,
            )
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
            redis.start()
            wait_for(lambda: httpx.get(f"{srv.url}/readyz").status_code == 200, timeout=15)
            # nothing was half-written: the same key now creates the task fresh and it runs
            up = httpx.post(
                f"{srv.url}/webhook", headers=auth() | {"Idempotency-Key": "during-outage"}, json={"message": "1+1"}
            )
            assert up.status_code == 202 and "idempotent-replayed" not in up.headers
            loc = f"{srv.url}{up.headers['location']}"
            wait_for(lambda: httpx.get(loc, headers=auth()).json()["status"] == "success", timeout=15)
    finally:
        redis.stop()
