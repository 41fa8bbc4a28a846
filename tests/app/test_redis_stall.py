"""Every 202 is a promise, every 5xx is not: a real redis-server paused with SIGSTOP (it accepts
connections and answers nothing), submissions during the stall answer 503 and never run, the
one accepted before it runs, and /readyz reports the stall within about 2 s.

Before, a submission timed out on the client (503) and ran once Redis woke up."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.app.conftest import RedisProcess
from tests.app.test_api import auth, serve, wait_for


@pytest.mark.slow
def test_redis_stall_503_never_runs_202_always_does(tmp_path: Path) -> None:
    server = RedisProcess()
    server.start()
    stream = "stall:tasks"
    client = redis.Redis.from_url(server.url)
    try:
        # rate limits off: the limiter shares this Redis and would answer 503 before the submit
        with serve(tmp_path, server, rate_limit_per_minute=0, queue_stream=stream) as srv:
            before = httpx.post(f"{srv.url}/webhook", headers=auth(), json={"message": "1+1"})
            assert before.status_code == 202
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                ready = httpx.get(f"{srv.url}/readyz", timeout=15)
                ready_seconds = time.monotonic() - started
                assert ready.status_code == 503 and "unavailable" in ready.json()["checks"]["queue"]
                assert ready_seconds < 3, ready_seconds
                print(f"/readyz answered 503 in {ready_seconds:.2f}s during the stall")
                answers: list[httpx.Response] = []

                def submit(headers: dict[str, str]) -> None:
                    answers.append(
                        httpx.post(f"{srv.url}/webhook", headers=headers, json={"message": "2+2"}, timeout=30)
                    )

                threads = [
                    threading.Thread(target=submit, args=(auth(),)),
                    threading.Thread(target=submit, args=(auth(),)),
                    threading.Thread(target=submit, args=(auth() | {"Idempotency-Key": "stall-1"},)),
                ]
                for t in threads:
                    t.start()
                time.sleep(7)  # past the accept deadline (2 s) and the wait for it (+3 s)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            for t in threads:
                t.join(30)
            assert [a.status_code for a in answers] == [503, 503, 503], [a.text for a in answers]
            assert all("not recorded" in a.json()["detail"] for a in answers)
            wait_for(lambda: httpx.get(f"{srv.url}/readyz").status_code == 200, timeout=15)
            loc = f"{srv.url}{before.headers['location']}"
            wait_for(lambda: httpx.get(loc, headers=auth()).json()["status"] == "success", timeout=15)
            time.sleep(1.5)  # give a late submit every chance to have written
            records = [k for k in client.scan_iter(f"{stream}:task:*")]
            assert len(records) == 1, records  # only the 202; the submits Redis ran late wrote nothing
            # the client's retry with the same key is safe: created now, once
            retry = httpx.post(
                f"{srv.url}/webhook", headers=auth() | {"Idempotency-Key": "stall-1"}, json={"message": "2+2"}
            )
            assert retry.status_code == 202 and "idempotent-replayed" not in retry.headers
            loc = f"{srv.url}{retry.headers['location']}"
            wait_for(lambda: httpx.get(loc, headers=auth()).json()["status"] == "success", timeout=15)
    finally:
        client.close()
        server.stop()
