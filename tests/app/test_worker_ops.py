"""Worker operations in-process: the /healthz and /readyz endpoint, and ECS task scale-in protection
against a real local HTTP server standing in for the ECS agent endpoint (``$ECS_AGENT_URI``)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_infra.agent_app.core.models import RunInput, RunStatus
from agent_infra.agent_app.settings import Settings
from agent_infra.agent_app.wiring import build
from agent_infra.agent_app.worker import HealthServer, TaskProtection, Worker

from tests.app.conftest import free_port


class FakeEcsAgent:
    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_next = 0
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                agent.calls.append(("PUT", self.path, body))
                if agent.fail_next:
                    agent.fail_next -= 1
                    payload = b'{"error": {"Code": "ServerException"}}'
                    self.send_response(500)
                else:
                    payload = json.dumps({"protection": {"ProtectionEnabled": body["ProtectionEnabled"]}}).encode()
                    self.send_response(200)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/agent"

    def states(self) -> list[bool]:
        return [body["ProtectionEnabled"] for _m, _p, body in self.calls]


@pytest.fixture
def ecs_agent() -> Iterator[FakeEcsAgent]:
    agent = FakeEcsAgent()
    thread = threading.Thread(target=agent.server.serve_forever, daemon=True)
    thread.start()
    yield agent
    agent.server.shutdown()
    agent.server.server_close()


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_health_endpoint_and_task_protection(
    ecs_agent: FakeEcsAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECS_AGENT_URI", ecs_agent.url)
    c = build(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db", llm_think_seconds=0.3))
    await c.start()
    worker = Worker(c, callbacks=False, protection=TaskProtection(ecs_agent.url, idle_grace_seconds=0.3))
    assert worker.protection.agent_uri == ecs_agent.url
    health = HealthServer(worker, "127.0.0.1", 0)
    await health.start()
    run = asyncio.create_task(worker.run())
    base = f"http://127.0.0.1:{health.port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await until(lambda: worker.started)
            live = await http.get(f"{base}/healthz")
            assert live.status_code == 200 and live.json()["busy"] is False
            ready = await http.get(f"{base}/readyz")
            assert ready.status_code == 200 and ready.json()["queue"] == "ok"
            assert (await http.get(f"{base}/nope")).status_code == 404
            assert ecs_agent.calls == []  # idle: no protection call

            outcome = await c.service.submit(RunInput(message="6*7"))
            await until(lambda: worker.busy)
            body = (await http.get(f"{base}/healthz")).json()
            assert body["busy"] is True and body["inflight"] == 1
            await until(lambda: ecs_agent.states() == [True])
            method, path, first = ecs_agent.calls[0]
            assert (method, path) == ("PUT", "/v1/agent/task-protection/v1/state")
            assert first == {"ProtectionEnabled": True, "ExpiresInMinutes": 60}
            assert (await http.get(f"{base}/healthz")).json()["scale_in_protected"] is True

            await until(lambda: not worker.busy)
            task = await c.store.get(outcome.task.id)
            assert task is not None and task.status == RunStatus.success
            await until(lambda: ecs_agent.states() == [True, False])  # after the idle grace
            assert ecs_agent.calls[1][2] == {"ProtectionEnabled": False}

            # two tasks back to back inside the grace keep protection on without flapping
            ecs_agent.fail_next = 1  # the first enable fails (HTTP 500) and is retried
            worker.protection.retry_seconds = 0.1
            await c.service.submit(RunInput(message="1+1"))
            await until(lambda: worker.busy)
            await until(lambda: ecs_agent.states() == [True, False, True, True])
            worker.stop()
            await asyncio.wait_for(run, 10)
            ready = await http.get(f"{base}/readyz")
            assert ready.status_code == 503 and ready.json()["stopping"] is True
        states = ecs_agent.states()  # disabled on shutdown (once more if shutdown raced the idle disable)
        assert states[:5] == [True, False, True, True, False] and not any(states[5:])
    finally:
        worker.stop()
        await asyncio.gather(run, return_exceptions=True)
        await health.close()
        await c.close()


async def test_no_ecs_agent_no_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)
    protection = TaskProtection(None)
    protection.start()
    protection.update(True)
    await asyncio.sleep(0.05)
    assert not protection.active and not protection.enabled
    await protection.close()
