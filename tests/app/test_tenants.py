"""Tenants: an API key maps to a principal; tasks, sessions, event streams, idempotency keys,
vector memory and dead letters are the principal's own; scopes gate /metrics and the DLQ."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from agent_infra.agent_app.api.security import parse_api_keys
from agent_infra.agent_app.core.models import Task
from websockets.asyncio.client import connect

from tests.app.conftest import RedisProcess
from tests.app.test_api import serve, wait_for

ALICE, BOB, ALICE_OPS, BOB_OPS = "alice-key-0001", "bob-key-00002", "alice-ops-0003", "bob-ops-00004"
KEYS = json.dumps(
    [
        {"key": ALICE, "principal": "alice"},
        {"key": BOB, "principal": "bob", "scopes": ["runs"]},
        {"key": ALICE_OPS, "principal": "alice", "scopes": ["operator"]},
        {"key": BOB_OPS, "principal": "bob", "scopes": ["operator", "runs"]},
    ]
)


def h(key: str, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key, **extra}


def test_tasks_idempotency_memory_and_scopes_are_per_principal(tmp_path: Path, redis_server: RedisProcess) -> None:
    with serve(tmp_path, redis_server, api_keys=KEYS) as srv:
        r = httpx.post(f"{srv.url}/webhook", headers=h(ALICE, **{"Idempotency-Key": "order-1"}), json={"message": "2+2"})
        assert r.status_code == 202
        loc = f"{srv.url}{r.headers['location']}"
        # The replayed task has no record until a worker takes it: 404 until then, never another's.
        wait_for(lambda: httpx.get(loc, headers=h(ALICE)).json().get("status") == "success", timeout=30)
        theirs = httpx.get(loc, headers=h(BOB))
        assert theirs.status_code == 404 and "not found" in theirs.text
        # the same Idempotency-Key from another principal is another key: a new task, not a replay
        b = httpx.post(f"{srv.url}/webhook", headers=h(BOB, **{"Idempotency-Key": "order-1"}), json={"message": "2+2"})
        assert b.status_code == 202 and "idempotent-replayed" not in b.headers
        assert b.json()["task_id"] != r.json()["task_id"]
        again = httpx.post(f"{srv.url}/webhook", headers=h(ALICE, **{"Idempotency-Key": "order-1"}), json={"message": "2+2"})
        assert again.json()["task_id"] == r.json()["task_id"] and again.headers["idempotent-replayed"] == "true"

        # vector memory: bob's retrieval never returns alice's results
        secret = "zebra launch code " + "".join(chr(97 + int(c, 16)) for c in uuid.uuid4().hex[:8])  # no digits
        httpx.post(f"{srv.url}/v1/runs", headers=h(ALICE), json={"message": secret})
        mine = httpx.post(f"{srv.url}/v1/runs", headers=h(ALICE), json={"message": secret}).json()
        other = httpx.post(f"{srv.url}/v1/runs", headers=h(BOB), json={"message": secret}).json()
        observation = next(c for c in other["chunks"] if c["type"] == "observation")
        assert observation["content"]["tool"] == "retrieve" and secret not in observation["content"]["output"]
        mine_obs = next(c for c in mine["chunks"] if c["type"] == "observation")
        assert secret in mine_obs["content"]["output"]

        # scopes: /metrics needs operator; an operator-only key cannot run the agent
        assert httpx.get(f"{srv.url}/metrics").status_code == 401
        assert httpx.get(f"{srv.url}/metrics", headers=h(ALICE)).status_code == 403
        metrics = httpx.get(f"{srv.url}/metrics", headers=h(ALICE_OPS))
        assert metrics.status_code == 200 and "agent_webhook_accepted_total" in metrics.text
        assert httpx.post(f"{srv.url}/v1/runs", headers=h(ALICE_OPS), json={"message": "1"}).status_code == 403


def test_dead_letters_are_per_principal(tmp_path: Path, redis_server: RedisProcess) -> None:
    stream = f"dlq:{uuid.uuid4().hex[:8]}"
    with serve(tmp_path, redis_server, api_keys=KEYS, queue_stream=stream) as srv:
        task = Task(session_id="s1", principal="alice", message="1+1")
        redis.Redis.from_url(redis_server.url).xadd(f"{stream}:dlq", {"task": task.to_json(), "attempts": "3"})
        assert httpx.get(f"{srv.url}/v1/dlq", headers=h(ALICE)).status_code == 403  # runs scope only
        assert [t["task_id"] for t in httpx.get(f"{srv.url}/v1/dlq", headers=h(ALICE_OPS)).json()] == [task.id]
        assert httpx.get(f"{srv.url}/v1/dlq", headers=h(BOB_OPS)).json() == []
        assert httpx.post(f"{srv.url}/v1/dlq/{task.id}/replay", headers=h(BOB_OPS)).status_code == 404
        replay = httpx.post(f"{srv.url}/v1/dlq/{task.id}/replay", headers=h(ALICE_OPS))
        assert replay.status_code == 202
        loc = f"{srv.url}{replay.json()['location']}"
        # The replayed task has no record until a worker takes it: 404 until then, never another's.
        wait_for(lambda: httpx.get(loc, headers=h(ALICE)).json().get("status") == "success", timeout=30)
        assert httpx.get(loc, headers=h(BOB_OPS)).status_code == 404


async def _ws_run(base: str, key: str, session: str, message: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with connect(f"ws://{base.removeprefix('http://')}/agent/{session}?api_key={key}") as ws:
        await ws.send(json.dumps({"message": message}))
        async with asyncio.timeout(15):
            while True:
                msg = json.loads(await ws.recv())
                out.append(msg)
                if msg["type"] in ("result", "error"):
                    return out


async def _ws_replay(base: str, key: str, session: str, seconds: float) -> list[dict[str, Any]]:
    """Join a session asking for every retained event; collect what arrives in ``seconds``."""
    out: list[dict[str, Any]] = []
    async with connect(f"ws://{base.removeprefix('http://')}/agent/{session}?api_key={key}&last_event_id=0-0") as ws:
        try:
            async with asyncio.timeout(seconds):
                while True:
                    out.append(json.loads(await ws.recv()))
        except TimeoutError:
            pass
    return out


def test_session_streams_are_per_principal(tmp_path: Path, redis_server: RedisProcess) -> None:
    with serve(tmp_path, redis_server, api_keys=KEYS) as srv:
        session = f"shared-{uuid.uuid4().hex[:6]}"
        alice = asyncio.run(_ws_run(srv.url, ALICE, session, "what is 3*3"))
        assert alice[-1]["content"] == "The answer is 9."
        # bob names the same session: it is his own (empty) session, none of alice's events
        assert [m for m in asyncio.run(_ws_replay(srv.url, BOB, session, 2.0)) if m["type"] != "heartbeat"] == []
        replayed = asyncio.run(_ws_replay(srv.url, ALICE, session, 2.0))
        assert "result" in [m["type"] for m in replayed]
        # his run in that session name does not see her history either
        bob = asyncio.run(_ws_run(srv.url, BOB, session, "what is 2*2"))
        assert bob[-1]["content"] == "The answer is 4."


def test_plain_key_list_is_one_default_principal_with_every_scope() -> None:
    keys = parse_api_keys("k1-aaaaaaa, k2-bbbbbbb")
    assert {p.id for p in keys.values()} == {"default"}
    assert all(p.scopes == {"runs", "operator"} for p in keys.values())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[{", "AGENT_API_KEYS: not valid JSON"),
        ('[{"key": "short", "principal": "a"}]', "AGENT_API_KEYS[0].key"),
        ('[{"key": "long-enough", "principal": "a/b"}]', "AGENT_API_KEYS[0].principal"),
        ('[{"key": "long-enough", "principal": "a", "scopes": ["admin"]}]', "AGENT_API_KEYS[0].scopes"),
    ],
)
def test_bad_key_config_names_the_entry(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_api_keys(raw)
