"""Worker processes against real Redis and PostgreSQL: SIGKILL mid-task, lease extension, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from agent_infra.agent_app.core.models import RunInput, RunStatus
from agent_infra.agent_app.settings import Settings
from agent_infra.agent_app.wiring import Container, build

from tests.app.conftest import ROOT, PostgresProcess, RedisProcess, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def env(redis_server: RedisProcess, postgres_server: PostgresProcess) -> dict[str, str]:
    return {
        "AGENT_QUEUE_BACKEND": "redis",
        "AGENT_STATE_BACKEND": "redis",
        "AGENT_REDIS_URL": redis_server.url,
        "AGENT_QUEUE_STREAM": f"kill:{uuid.uuid4().hex[:8]}",
        "AGENT_DATABASE_URL": postgres_server.url,
        "AGENT_QUEUE_CLAIM_TIMEOUT_SECONDS": "1.5",
        "AGENT_WORKER_CONCURRENCY": "2",
        "AGENT_LLM_THINK_SECONDS": "0.4",
    }


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("AGENT_").lower(): v for k, v in env.items()})  # type: ignore[arg-type]


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> subprocess.Popen[bytes]:
        full = os.environ | env | extra | {"PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_infra.agent_app.cli", "worker", "--log-level", "warning"], env=full, cwd=ROOT
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def submit(c: Container, n: int) -> list[str]:
    ids = []
    for i in range(n):
        outcome = await c.service.submit(RunInput(message=f"{i}+1", session_id=f"kill-{uuid.uuid4().hex[:6]}"))
        ids.append(outcome.task.id)
    return ids


async def any_running(c: Container, ids: list[str]) -> bool:
    for task_id in ids:  # what GET /v1/tasks/{id} answers (running lives in the run lock, not SQL)
        task = await c.service.get_task(task_id)
        if task is not None and task.status == RunStatus.running:
            return True
    return False


async def wait_status(c: Container, ids: list[str], timeout: float, want: set[RunStatus]) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = {i: await c.store.get(i) for i in ids}
        if all(t is not None and t.status in want for t in tasks.values()):
            return tasks
        if time.monotonic() > deadline:
            raise AssertionError({i: t.status if t else None for i, t in tasks.items()})
        await asyncio.sleep(0.1)


def test_sigkilled_worker_task_completes_once(env: dict[str, str], spawn: Any) -> None:
    async def scenario() -> None:
        c = build(settings_from(env))
        await c.start()
        try:
            ids = await submit(c, 6)
            victim = spawn()
            deadline = time.monotonic() + 20
            while not await any_running(c, ids):
                assert time.monotonic() < deadline, "worker never started a task"
                await asyncio.sleep(0.05)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            spawn()
            tasks = await wait_status(c, ids, 40, {RunStatus.success})
            for task_id, task in tasks.items():
                assert task.result == f"The answer is {int(task.message.split('+')[0]) + 1}.", task_id
            runs = [await c.store.runs(i) for i in ids]
            assert max(runs) >= 2  # at least one task was redelivered after the kill
            assert not await c.queue.dead_letters()
            assert await c.queue.depth() == 0  # type: ignore[attr-defined]
        finally:
            await c.close()

    asyncio.run(scenario())


def test_long_run_is_not_redelivered_while_worker_lives(env: dict[str, str], spawn: Any) -> None:
    async def scenario() -> None:
        c = build(settings_from(env))
        await c.start()
        try:
            # each run takes ~3 s, twice the 1.5 s claim timeout; a second worker waits to steal it
            spawn(AGENT_LLM_THINK_SECONDS="1.5", AGENT_WORKER_CONCURRENCY="1")
            spawn(AGENT_LLM_THINK_SECONDS="1.5", AGENT_WORKER_CONCURRENCY="1")
            ids = await submit(c, 1)
            await wait_status(c, ids, 30, {RunStatus.success})
            assert await c.store.runs(ids[0]) == 1
        finally:
            await c.close()

    asyncio.run(scenario())


def test_sigterm_finishes_current_task_then_exits(env: dict[str, str], spawn: Any) -> None:
    async def scenario() -> None:
        c = build(settings_from(env))
        await c.start()
        try:
            hport = free_port()
            worker = spawn(
                AGENT_LLM_THINK_SECONDS="1.0", AGENT_WORKER_CONCURRENCY="1", AGENT_WORKER_HEALTH_PORT=str(hport)
            )
            ids = await submit(c, 1)
            deadline = time.monotonic() + 20
            while (t := await c.service.get_task(ids[0])) is None or t.status != RunStatus.running:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            async with httpx.AsyncClient(timeout=5) as http:  # the CLI's health endpoint shows it busy
                live = (await http.get(f"http://127.0.0.1:{hport}/healthz")).json()
                assert live["busy"] is True and live["inflight"] == 1
                assert (await http.get(f"http://127.0.0.1:{hport}/readyz")).status_code == 200
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(worker.wait, 20) == 0
            tasks = await wait_status(c, ids, 5, {RunStatus.success})
            assert tasks[ids[0]].result == "The answer is 1."
        finally:
            await c.close()

    asyncio.run(scenario())
