"""TaskStore contract on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_infra.agent_app.adapters.store.sql import SqlStore
from agent_infra.agent_app.core.models import RunStatus, Task


@pytest.fixture(params=["sqlite", "postgres", "dynamodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "dynamodb":  # moto server: the serverless task store in the state table
        from agent_infra.agent_app.adapters.store.dynamodb import DynamoStore

        moto = request.getfixturevalue("moto_server")
        dynamo = DynamoStore(table=moto.create_table(), client=moto.client("dynamodb"))
        await dynamo.init()
        yield dynamo  # type: ignore[misc]
        return
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    else:
        url = request.getfixturevalue("postgres_server").url
    s = SqlStore(url)
    await s.init()
    await s.init()  # idempotent: schema created or migrated on every start
    yield s
    await s.close()


async def test_result_is_recorded_once(store: SqlStore) -> None:
    t = Task(id=f"task_{uuid.uuid4().hex}", session_id="s", message="m")
    started = await store.start(t, "w1")
    assert started is not None and started.status == RunStatus.running
    assert await store.finish(t.id, RunStatus.success, "first", None, [{"type": "result"}]) is True
    # the redelivered copy of the same task sees it finished and must not overwrite it
    again = await store.start(t, "w2")
    assert again is not None and again.status == RunStatus.success
    assert await store.finish(t.id, RunStatus.success, "second", None, []) is False
    got = await store.get(t.id)
    assert got is not None and got.result == "first" and got.steps == [{"type": "result"}]


async def test_callback_outbox(store: SqlStore) -> None:
    task_id = f"task_{uuid.uuid4().hex}"
    now = time.time()
    await store.schedule_callback(task_id, "https://example.com/h", {"a": 1}, now)
    await store.schedule_callback(task_id, "https://example.com/h", {"a": 1}, now)  # idempotent
    due = [r for r in await store.due_callbacks(now + 1) if r["task_id"] == task_id]
    assert len(due) == 1 and due[0]["id"] == f"msg_{task_id}"
    assert await store.claim_callback(due[0]["id"], now + 60, due[0]["next_at"]) is True
    assert await store.claim_callback(due[0]["id"], now + 60, due[0]["next_at"]) is False
    await store.callback_attempted(due[0]["id"], delivered=True, give_up=False, next_at=None, last_error=None)
    status = await store.callback_status(task_id)
    assert status is not None and status["status"] == "delivered" and status["attempts"] == 1


async def test_batched_result_is_recorded_once_with_its_callback(store: SqlStore) -> None:
    """The worker fast path: concurrent ``record_result`` calls share one statement, and each
    learns whether it recorded the result first; only winners get a callback outbox row."""
    import asyncio

    if not hasattr(store, "record_result"):
        pytest.skip("no batched result write on this store")
    tasks = [Task(id=f"task_{uuid.uuid4().hex}", session_id="s", message=f"m{i}") for i in range(5)]
    cb = ("https://example.com/h", {"a": 1})
    # one of them already finished (a duplicate run), one has a non-terminal row (started classically)
    await store.start(tasks[1], "w0")
    await store.start(tasks[0], "w0")
    assert await store.finish(tasks[0].id, RunStatus.success, "earlier", None, []) is True
    won = await asyncio.gather(
        *(
            store.record_result(t, RunStatus.success, f"r{i}", None, [{"type": "result"}], worker_id="w1", runs=2,
                                callback=cb)
            for i, t in enumerate(tasks)
        ),
        store.record_result(tasks[2], RunStatus.error, None, "late twin", [], worker_id="w2", runs=3, callback=cb),
    )
    assert won == [False, True, True, True, True, False]
    got = await store.get(tasks[0].id)
    assert got is not None and got.result == "earlier"
    for i in (1, 2, 3, 4):
        row = await store.get(tasks[i].id)
        assert row is not None and row.status == RunStatus.success and row.result == f"r{i}"
        assert (await store.callback_status(tasks[i].id) or {}).get("status") == "pending"
    assert await store.callback_status(tasks[0].id) is None
    assert await store.runs(tasks[2].id) == 3  # the losing twin's start is still counted
    assert await store.runs(tasks[1].id) == 2
