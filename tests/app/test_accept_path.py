"""The webhook accept path's two start-up/per-request costs (benchmarks/accept_wrk.py): the
start-up heap is frozen out of the cyclic GC once the app has started, and ``POST /webhook``
answers without a thread-pool hop. Real uvicorn, real httpx, real Redis."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from tests.app.conftest import RedisProcess
from tests.app.test_api import auth, serve


def test_started_app_freezes_its_start_up_heap(tmp_path: Path, redis_server: RedisProcess) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        with serve(tmp_path, redis_server) as server:
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
            # the modules, the app and the adapters: tens of thousands of objects
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_webhook_accepts_without_a_thread_pool_hop(
    tmp_path: Path, redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(func, "__name__", repr(func)))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    with serve(tmp_path, redis_server) as server, httpx.Client(base_url=server.url) as client:
        for i in range(5):
            r = client.post("/webhook", json={"message": f"{i}+1"},
                            headers=auth() | {"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
            assert r.status_code == 202, r.text
        assert calls == []
    # the probe itself sees a thread-pool hop (every dependency is async now, so make one)
    anyio.run(anyio.to_thread.run_sync, lambda: None)
    assert calls, "the probe never saw a thread-pool call; it would not catch a regression"
