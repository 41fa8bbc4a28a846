"""Callbacks are delivered concurrently with a per-receiver limit: receivers that hang (real local
HTTP servers that hold each request 20 s) never delay a healthy one, and its retries keep their
schedule. Before, delivery was sequential: three hanging receivers pushed a healthy receiver's
first attempt to 15 s and its retries to 34 s and 65 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.conftest import RedisProcess, free_port
from tests.app.test_api import auth, serve, wait_for


@dataclass
class Hook:
    """A real HTTP receiver: ``hang`` holds each request until released (or 20 s); ``statuses``
    scripts the answers; arrival times and the peak of concurrent requests are recorded."""

    hang: bool = False
    statuses: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    inflight: int = 0
    peak: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def hooks() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []
    made: list[Hook] = []

    def make(**kwargs: Any) -> Hook:
        hook = Hook(**kwargs)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with hook.lock:
                    hook.arrivals.append(time.monotonic())
                    hook.inflight += 1
                    hook.peak = max(hook.peak, hook.inflight)
                try:
                    if hook.hang:
                        hook.release.wait(20)
                    status = hook.statuses.pop(0) if hook.statuses else 200
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass
                finally:
                    with hook.lock:
                        hook.inflight -= 1

            def log_message(self, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", hook.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        made.append(hook)
        return hook

    yield make
    for hook in made:
        hook.release.set()
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_hanging_receivers_do_not_delay_a_healthy_one(tmp_path: Path, redis_server: RedisProcess, hooks: Any) -> None:
    hanging = [hooks(hang=True) for _ in range(3)]
    healthy = hooks(statuses=[503, 503])  # two failures, then accepted: two retries on schedule
    with serve(tmp_path, redis_server, callback_allow_private=True, worker_concurrency=16) as srv:
        for hook in hanging:
            for _ in range(6):  # more than the per-receiver limit of 4
                r = httpx.post(f"{srv.url}/webhook", headers=auth(), json={"message": "1+1", "callback_url": hook.url})
                assert r.status_code == 202
        wait_for(lambda: all(h.inflight >= 4 for h in hanging), timeout=15)  # they hold their slots now
        submitted = time.monotonic()
        r = httpx.post(f"{srv.url}/webhook", headers=auth(), json={"message": "2+2", "callback_url": healthy.url})
        loc = f"{srv.url}{r.headers['location']}"
        cb = wait_for(
            lambda: (httpx.get(loc, headers=auth()).json().get("callback") or {}).get("status") == "delivered"
            and httpx.get(loc, headers=auth()).json()["callback"],
            timeout=20,
        )
        assert cb["attempts"] == 3 and len(healthy.arrivals) == 3
        first, second, third = (t - submitted for t in healthy.arrivals)
        print(f"healthy receiver attempts at {first:.2f}s, {second:.2f}s, {third:.2f}s after submission")
        # first attempt at once; retries after full-jitter backoff (<= 2 s, <= 4 s) plus a 0.5 s poll
        assert first < 5, first
        assert second - first < 6, second - first
        assert third - second < 8, third - second
        # the per-receiver limit: a hanging receiver never holds more than 4 attempts
        assert all(h.peak == 4 for h in hanging), [h.peak for h in hanging]
