"""``agent-app worker --processes N`` against real redis-server and PostgreSQL: a supervisor and N
spawned worker processes in one consumer group; SIGTERM, a SIGKILLed child, the aggregated health
endpoint and ECS task scale-in protection owned by the supervisor (the local fake ECS agent)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from agent_infra.agent_app.core.models import RunStatus
from agent_infra.agent_app.wiring import build

from tests.app.conftest import ROOT, free_port
from tests.app.test_worker import env, settings_from, submit, wait_status  # noqa: F401  (env: fixture)
from tests.app.test_worker_ops import FakeEcsAgent, ecs_agent  # noqa: F401  (ecs_agent: fixture)

pytestmark = pytest.mark.slow


@pytest.fixture
def supervisor(env: dict[str, str]) -> Iterator[Any]:  # noqa: F811
    procs: list[subprocess.Popen[bytes]] = []

    def start(processes: int = 2, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        full = os.environ | env | extra | {"PYTHONPATH": str(ROOT), "AGENT_WORKER_PROCESSES": str(processes)}
        full.pop("ECS_AGENT_URI", None) if "ECS_AGENT_URI" not in extra else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_infra.agent_app.cli", "worker", "--log-level", "warning",
             "--health-port", str(port), "--health-host", "127.0.0.1"],
            env=full,
            cwd=ROOT,
        )
        procs.append(proc)
        return proc, f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def health(http: httpx.AsyncClient, base: str, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    try:
        res = await http.get(base + path)
    except httpx.HTTPError:
        return 0, {}
    return res.status_code, res.json()


async def until_health(http: httpx.AsyncClient, base: str, check: Any, path: str = "/healthz",
                       timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, body = await health(http, base, path)
        if code and check(code, body):
            return body
        assert time.monotonic() < deadline, (code, body)
        await asyncio.sleep(0.05)


def test_two_processes_batch_once_health_and_protection(
    env: dict[str, str], supervisor: Any, ecs_agent: FakeEcsAgent  # noqa: F811
) -> None:
    async def scenario() -> None:
        c = build(settings_from(env))
        await c.start()
        proc, base = supervisor(ECS_AGENT_URI=ecs_agent.url, AGENT_LLM_THINK_SECONDS="0.3")
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                ready = await until_health(http, base, lambda code, _b: code == 200, "/readyz")
                assert ready["processes"] == 2 and ready["queue"] == "ok" and ready["busy"] is False
                pids = {child["pid"] for child in ready["children"]}
                assert len(pids) == 2 and proc.pid not in pids and all(ch["alive"] for ch in ready["children"])
                assert ecs_agent.calls == []  # idle: no protection call

                ids = await submit(c, 8)
                busy = await until_health(http, base, lambda _c, b: b["inflight"] >= 2)
                assert busy["busy"] is True and busy["concurrency"] == 4
                tasks = await wait_status(c, ids, 20, {RunStatus.success})
                for task in tasks.values():
                    assert task.result == f"The answer is {int(task.message.split('+')[0]) + 1}."
                assert [await c.store.runs(i) for i in ids] == [1] * 8  # exactly once
                idle = await until_health(http, base, lambda _c, b: b["processed"] == 8 and not b["busy"])
                assert idle["inflight"] == 0
                # the supervisor toggled protection once for the whole batch: on, then off after the grace
                deadline = time.monotonic() + 10
                while ecs_agent.states() != [True, False]:
                    assert time.monotonic() < deadline, ecs_agent.states()
                    await asyncio.sleep(0.05)
                assert ecs_agent.calls[0][1] == "/v1/agent/task-protection/v1/state"
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 20) == 0
            assert ecs_agent.states() == [True, False]  # children never called the agent
            assert await c.queue.depth() == 0  # type: ignore[attr-defined]
        finally:
            await c.close()

    asyncio.run(scenario())


def test_sigterm_to_supervisor_finishes_inflight_then_exits(env: dict[str, str], supervisor: Any) -> None:  # noqa: F811
    async def scenario() -> None:
        c = build(settings_from(env))
        await c.start()
        proc, base = supervisor(AGENT_LLM_THINK_SECONDS="1.0", AGENT_WORKER_CONCURRENCY="1")
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                await until_health(http, base, lambda code, _b: code == 200, "/readyz")
                ids = await submit(c, 2)
                await until_health(http, base, lambda _c, b: b["inflight"] == 2)
                proc.send_signal(signal.SIGTERM)
                # draining: still alive, no longer ready
                draining = await until_health(http, base, lambda code, _b: code == 503, "/readyz", timeout=5)
                assert draining["stopping"] is True and draining["inflight"] >= 1
                live = await until_health(http, base, lambda code, _b: code == 200, "/healthz", timeout=1)
                assert live["stopping"] is True
            assert await asyncio.to_thread(proc.wait, 20) == 0
            tasks = await wait_status(c, ids, 5, {RunStatus.success})
            assert [await c.store.runs(i) for i in ids] == [1, 1]
            assert all(t.result for t in tasks.values())
        finally:
            await c.close()

    asyncio.run(scenario())


def test_sigkilled_child_is_restarted_and_its_task_completes(env: dict[str, str], supervisor: Any) -> None:  # noqa: F811
    async def scenario() -> None:
        c = build(settings_from(env))
        await c.start()
        proc, base = supervisor(AGENT_LLM_THINK_SECONDS="1.0", AGENT_WORKER_CONCURRENCY="1")
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                await until_health(http, base, lambda code, _b: code == 200, "/readyz")
                ids = await submit(c, 1)
                deadline = time.monotonic() + 20
                while (t := await c.service.get_task(ids[0])) is None or t.status != RunStatus.running:
                    assert time.monotonic() < deadline, "no child started the task"
                    await asyncio.sleep(0.05)
                body = await until_health(http, base, lambda _c, b: b["inflight"] == 1)
                victim = next(ch for ch in body["children"] if ch["inflight"] == 1)
                os.kill(victim["pid"], signal.SIGKILL)
                await until_health(http, base, lambda code, _b: code == 503)  # a child is down
                after = await until_health(
                    http, base, lambda code, b: code == 200 and b["children"][victim["index"]]["restarts"] == 1
                )
                assert after["children"][victim["index"]]["pid"] != victim["pid"]
                tasks = await wait_status(c, ids, 20, {RunStatus.success})
                assert tasks[ids[0]].result == "The answer is 1."
                assert await c.store.runs(ids[0]) >= 2  # reclaimed (XAUTOCLAIM) after the kill
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 20) == 0
        finally:
            await c.close()

    asyncio.run(scenario())
