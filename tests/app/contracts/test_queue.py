"""One contract suite for every TaskQueue: in-process, Redis Streams (real redis-server), SQS (moto server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from agent_infra.agent_app.adapters.queue.memory import MemoryQueue
from agent_infra.agent_app.adapters.queue.redis_streams import RedisStreamsQueue
from agent_infra.agent_app.core.models import Task
from agent_infra.agent_app.core.ports import TaskQueue

LEASE = 0.6


@pytest.fixture(params=["memory", "redis", "sqs"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[TaskQueue]:
    if request.param == "memory":
        yield MemoryQueue(max_attempts=2)
        return
    if request.param == "sqs":  # moto server: real boto3 over HTTP; records and keys in DynamoDB
        from agent_infra.agent_app.adapters.queue.sqs import SqsQueue

        moto = request.getfixturevalue("moto_server")
        url, dlq = moto.create_queues(max_receive_count=10)
        yield SqsQueue(queue_url=url, dlq_url=dlq, table=moto.create_table(), max_attempts=2,
                       sqs_client=moto.client("sqs"), dynamodb_client=moto.client("dynamodb"))
        return
    server = request.getfixturevalue("redis_server")
    q = RedisStreamsQueue.from_url(
        server.url, stream=f"t:{uuid.uuid4().hex[:8]}", claim_timeout_seconds=LEASE, max_attempts=2
    )
    yield q
    await q.close()


def task(msg: str = "hi", h: str = "h1") -> Task:
    return Task(session_id="s1", message=msg, request_hash=h)


async def test_port_protocol(queue: TaskQueue) -> None:
    assert isinstance(queue, TaskQueue)


async def test_submit_claim_ack(queue: TaskQueue) -> None:
    t = task()
    outcome = await queue.submit(t, None, 3600)
    assert outcome.created and (await queue.get(t.id)) is not None
    d = await queue.claim("w1", LEASE, block_seconds=0.5)
    assert d is not None and d.task.id == t.id and d.attempt == 1
    await queue.ack(d)
    await asyncio.sleep(LEASE + 0.3)
    assert await queue.claim("w2", LEASE, block_seconds=0.3) is None


async def test_idempotency_key_same_body_returns_original(queue: TaskQueue) -> None:
    first = await queue.submit(task(), "key-1", 3600)
    again = await queue.submit(task(), "key-1", 3600)
    assert again.created is False and again.conflict is False and again.task.id == first.task.id
    other = await queue.submit(task("different", "h2"), "key-1", 3600)
    assert other.conflict is True and other.task.id == first.task.id
    d = await queue.claim("w", LEASE, block_seconds=0.3)
    assert d is not None
    await queue.ack(d)
    assert await queue.claim("w", LEASE, block_seconds=0.3) is None  # one task, not two


async def test_expired_lease_is_redelivered(queue: TaskQueue) -> None:
    t = task()
    await queue.submit(t, None, 3600)
    first = await queue.claim("dead-worker", LEASE, block_seconds=0.5)
    assert first is not None
    await asyncio.sleep(LEASE + 0.4)
    again = await queue.claim("w2", LEASE, block_seconds=0.5)
    assert again is not None and again.task.id == t.id and again.attempt == 2


async def test_extended_lease_is_not_redelivered(queue: TaskQueue) -> None:
    await queue.submit(task(), None, 3600)
    d = await queue.claim("live-worker", LEASE, block_seconds=0.5)
    assert d is not None
    for _ in range(4):  # 4 x 0.3 s = twice the lease, kept alive by heartbeats
        await asyncio.sleep(LEASE / 2)
        await queue.extend(d, LEASE)
        assert await queue.claim("thief", LEASE, block_seconds=0.01) is None
    await queue.ack(d)


async def test_failures_dead_letter_then_replay(queue: TaskQueue) -> None:
    t = task()
    await queue.submit(t, None, 3600)
    for _ in range(2):
        d = await queue.claim("w", LEASE, block_seconds=0.5)
        assert d is not None
        await queue.release(d)
    assert await queue.claim("w", LEASE, block_seconds=0.3) is None
    dead = await queue.dead_letters()
    assert [x.id for x in dead] == [t.id]
    assert await queue.replay(t.id) == 1
    d = await queue.claim("w", LEASE, block_seconds=0.5)
    assert d is not None and d.task.id == t.id
    await queue.ack(d)


async def test_release_without_counting_keeps_attempts(queue: TaskQueue) -> None:
    await queue.submit(task(), None, 3600)
    for _ in range(3):  # more hand-backs than max_attempts, none counted
        d = await queue.claim("w", LEASE, block_seconds=0.5)
        assert d is not None
        await queue.release(d, count_attempt=False)
    assert not await queue.dead_letters()
