"""StateStore contract: in-process, Redis (real redis-server), DynamoDB (moto server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agent_infra.agent_app.adapters.state.memory import MemoryState
from agent_infra.agent_app.adapters.state.redis import RedisState
from agent_infra.agent_app.core.models import Chunk
from agent_infra.agent_app.core.ports import StateStore


@pytest.fixture(params=["memory", "redis", "dynamodb"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryState(heartbeat_seconds=0.2)
        return
    if request.param == "dynamodb":  # moto server: real boto3 over HTTP
        from agent_infra.agent_app.adapters.state.dynamodb import DynamoState

        moto = request.getfixturevalue("moto_server")
        yield DynamoState(table=moto.create_table(), heartbeat_seconds=0.2, poll_seconds=0.05,
                          client=moto.client("dynamodb"))
        return
    server = request.getfixturevalue("redis_server")
    s = RedisState.from_url(server.url, prefix=f"t{uuid.uuid4().hex[:6]}", heartbeat_seconds=0.2)
    yield s
    await s.close()


async def test_session_state_round_trip(state: StateStore) -> None:
    assert await state.get_session("s") is None
    await state.put_session("s", {"history": [1]}, 60)
    assert await state.get_session("s") == {"history": [1]}


async def test_one_active_run_per_session(state: StateStore) -> None:
    assert await state.acquire_run("s", "t1", 30)
    assert await state.acquire_run("s", "t1", 30)  # re-entrant for a redelivered task
    assert not await state.acquire_run("s", "t2", 30)
    assert await state.active_run("s") == "t1"
    await state.request_interrupt("s")
    assert await state.interrupted("s", "t1")
    await state.release_run("s", "t1")
    assert await state.acquire_run("s", "t2", 30)


async def test_events_resume_after_last_seen(state: StateStore) -> None:
    ids = [await state.publish("s", Chunk(type="thinking", content=str(i))) for i in range(3)]
    got: list[Chunk] = []
    async for chunk in state.subscribe("s", ids[0]):
        got.append(chunk)
        if len(got) == 2:
            break
    assert [c.content for c in got] == ["1", "2"] and [c.id for c in got] == ids[1:]


async def test_cursor_then_live_events_and_heartbeat(state: StateStore) -> None:
    await state.publish("s2", Chunk(type="thinking", content="old"))
    cursor = await state.cursor("s2")
    seen: list[Chunk] = []

    async def consume() -> None:
        async for chunk in state.subscribe("s2", cursor):
            seen.append(chunk)
            if chunk.type == "result":
                return

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.5)  # idle: heartbeats
    await state.publish("s2", Chunk(type="result", content="new"))
    await asyncio.wait_for(consumer, 5)
    types = [c.type for c in seen]
    assert "heartbeat" in types and types[-1] == "result" and all(c.content != "old" for c in seen)


async def test_worker_fast_path_transitions(state: StateStore) -> None:
    """begin_run/end_run/publish_nowait (Redis): lock + run count + session + first ``running``
    event in one call, batched events in order, then final event + session + unlock."""
    if not hasattr(state, "begin_run"):
        pytest.skip("no worker fast path on this state store")
    s: Any = state
    await state.put_session("fp", {"history": [1]}, 60)
    first = await s.begin_run("fp", "t1", 30, Chunk(type="status", content="running", task_id="t1"))
    assert first.acquired and first.runs == 1 and first.session == {"history": [1]} and first.event_id
    assert await state.active_run("fp") == "t1"
    busy = await s.begin_run("fp", "t2", 30, None)
    assert not busy.acquired and busy.runs == 0
    again = await s.begin_run("fp", "t1", 30, Chunk(type="status", content="running"))  # a restart
    assert again.acquired and again.runs == 2 and again.event_id == ""
    ids = await asyncio.gather(*(s.publish_nowait("fp", Chunk(type="thinking", content=str(i))) for i in range(5)))
    assert ids == sorted(ids) and len(set(ids)) == 5
    await s.end_run("fp", "t1", Chunk(type="status", content="success"), {"history": [1, 2]}, 60)
    assert await state.active_run("fp") is None
    assert await state.get_session("fp") == {"history": [1, 2]}
    seen = []
    async for chunk in state.subscribe("fp", first.event_id):
        seen.append(chunk.content)
        if chunk.content == "success":
            break
    assert seen == ["0", "1", "2", "3", "4", "success"]
