"""What the Agent Protocol layer costs on top of the service, side by side with /v1.

    python benchmarks/agent_protocol_bench.py [--requests 300]

Starts ``agent-app serve`` (embedded defaults: SQLite, in-process queue, offline model with zero
think time) on a free loopback port and sends, one at a time over one keep-alive connection:
``POST /v1/runs`` vs ``POST /runs/wait`` (same message), ``POST /threads/{id}/runs/wait`` on one thread
(its run list grows), ``POST /threads`` and ``POST /threads/search`` (limit 10) over the threads made.
Prints p50/p95 latency and requests/s for each.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def measure(name: str, n: int, call: Callable[[], httpx.Response]) -> None:
    call()  # warm up
    took: list[float] = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        response = call()
        took.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"{name}: HTTP {response.status_code} {response.text[:200]}")
    total = time.perf_counter() - started
    print(f"{name:<34} p50 {pct(took, 50) * 1000:6.1f} ms  p95 {pct(took, 95) * 1000:6.1f} ms  {n / total:6.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    n = parser.parse_args().requests
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="ap-bench-")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AGENT_API_KEYS": KEY,
        "AGENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
        "AGENT_RATE_LIMIT_PER_MINUTE": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_infra.agent_app.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=60) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("agent-app serve did not start")
                time.sleep(0.1)
            body = {"message": "what is 6*7"}
            measure("POST /v1/runs", n, lambda: http.post("/v1/runs", json=body))
            measure("POST /runs/wait", n, lambda: http.post("/runs/wait", json={"input": "what is 6*7"}))
            thread = http.post("/threads", json={}).json()["thread_id"]
            measure(
                "POST /threads/{id}/runs/wait",
                n,
                lambda: http.post(f"/threads/{thread}/runs/wait", json={"input": "what is 6*7"}),
            )
            measure("POST /threads", n, lambda: http.post("/threads", json={"metadata": {"k": "v"}}))
            measure("POST /threads/search (limit 10)", n, lambda: http.post("/threads/search", json={"limit": 10}))
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    main()
