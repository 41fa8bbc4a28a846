"""Benchmarks for agent_app, printed side by side. Starts its own throwaway redis-server.

    python benchmarks/app_bench.py [--tasks 1000] [--only accept,e2e,kill]   # needs the [bench] extra

(a) webhook accept rate and p99 under wrk: benchmarks/accept_wrk.py (run here with its defaults;
    run it directly for its options).
(b) end-to-end tasks/s and enqueue-to-done p50/p99 at saturation: agent_app worker (offline model,
    zero think time) vs Celery (Redis broker, defaults) vs a minimal Redis Streams loop.
(c) kill test: 200 tasks of 100 ms, the worker SIGKILLed after 50 have started, a new worker started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_env import DEFAULT_PACKAGES, banner, throwaway_redis  # noqa: E402

ENV_BASE = {**os.environ, "PYTHONPATH": str(ROOT)}
DATABASE_URL: str | None = None  # --database-url: agent_app's task store (default: a fresh SQLite file)
PROCESSES = 2  # --processes: `agent-app worker --processes N` (2 = one per CPU on the 2-core bench machine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on port {port}")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def bench_accept() -> None:
    """(a): the wrk benchmark in its own process (it starts its own servers and redis-server)."""
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accept_wrk.py")], check=True, timeout=1200)


def _settings_of(env: dict[str, str]) -> object:
    from agent_infra.agent_app.settings import Settings

    return Settings(**{k.removeprefix("AGENT_").lower(): v for k, v in env.items() if k.startswith("AGENT_")})


async def _container(env: dict[str, str]) -> object:
    from agent_infra.agent_app.wiring import build

    c = build(_settings_of(env))  # type: ignore[arg-type]
    await c.start()
    return c


async def _submit_many(c: object, n: int, prefix: str = "", concurrency: int = 16) -> list[str]:
    """Enqueue n tasks as fast as the client can (16 in flight), each on its own session."""
    from agent_infra.agent_app.core.models import RunInput

    service = c.service  # type: ignore[attr-defined]
    ids: list[str] = [""] * n
    counter = iter(range(n))

    async def one() -> None:
        for i in counter:
            out = await service.submit(RunInput(message=f"{i}+1", session_id=f"b{prefix}{uuid.uuid4().hex[:8]}"))
            ids[i] = out.task.id

    await asyncio.gather(*(one() for _ in range(concurrency)))
    return ids


async def _submit_ours(settings_env: dict[str, str], n: int) -> tuple[list[str], object]:
    c = await _container(settings_env)
    return await _submit_many(c, n), c


async def _wait_done(c: object, ids: list[str], timeout: float) -> list[tuple[float, float, int]]:
    """(created_at, finished_at, runs) of every finished task among ids (all of them unless timed out)."""
    import sqlalchemy as sa
    from agent_infra.agent_app.adapters.store.sql import tasks

    store = c.store  # type: ignore[attr-defined]
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    while True:
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(tasks.c.id, tasks.c.created_at, tasks.c.updated_at, tasks.c.runs).where(
                        tasks.c.status == "success"
                    )
                )
            ).all()
        done = {r[0]: (r[1], r[2], r[3]) for r in rows if r[0] in wanted}
        if len(done) == len(ids) or time.monotonic() > deadline:
            return list(done.values())
        await asyncio.sleep(0.05)


async def _start_times(c: object, ids: list[str]) -> dict[str, float]:
    """When each task started: the id (ms clock) of its ``status: running`` event on the session stream."""
    import json

    from agent_infra.agent_app.adapters.store.sql import tasks

    store, r = c.store, c.state.r  # type: ignore[attr-defined]
    import sqlalchemy as sa

    async with store.engine.connect() as conn:
        sessions = dict((await conn.execute(sa.select(tasks.c.id, tasks.c.session_id))).all())
    out: dict[str, float] = {}
    for task_id in ids:
        for entry_id, fields in await r.xrange(f"agent:events:{sessions[task_id]}", count=3):
            chunk = json.loads(fields[b"chunk"])
            if chunk["type"] == "status" and chunk["content"] == "running" and chunk.get("task_id") == task_id:
                out[task_id] = int(entry_id.split(b"-")[0]) / 1000
                break
    return out


def ours_env(redis_url: str, tmp: str, **extra: str) -> dict[str, str]:
    return (
        ENV_BASE
        | {
            "AGENT_QUEUE_BACKEND": "redis",
            "AGENT_STATE_BACKEND": "redis",
            "AGENT_REDIS_URL": redis_url,
            "AGENT_QUEUE_STREAM": f"bench:{uuid.uuid4().hex[:6]}",
            "AGENT_WORKER_CONCURRENCY": "32",
            "AGENT_WORKER_PROCESSES": str(PROCESSES),
            "AGENT_DATABASE_URL": DATABASE_URL or f"sqlite+aiosqlite:///{tmp}/{uuid.uuid4().hex[:6]}.db",
        }
        | extra
    )


def start_ours_worker(env: dict[str, str], log_level: str = "warning") -> subprocess.Popen[bytes]:
    """Start `agent-app worker` and return once its /readyz answers 200 (start-up is not timed)."""
    hport = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_infra.agent_app.cli", "worker", "--log-level", log_level, "--health-port", str(hport),
         "--health-host", "127.0.0.1"],
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{hport}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("agent-app worker never became ready")


def paced(n: int, rate: float, submit: object) -> None:
    """Call submit(i) n times at ``rate`` per second on an absolute schedule."""
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        submit(i)  # type: ignore[operator]


async def apaced(n: int, rate: float, submit: object) -> None:
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await submit(i)  # type: ignore[operator]


Row = tuple[str, float, list[float], list[float]]
OURS = "agent_app worker"  # name, tasks/s, enqueue->done, enqueue->start


def bench_e2e(redis_url: str, n: int, tmp: str, paced_n: int, paced_rate: float) -> None:
    r = redis.Redis.from_url(redis_url)
    sat: list[Row] = []
    pace: list[Row] = []

    # -- agent_app: worker started and ready, warmed up with one task, then the burst / paced run
    env = ours_env(redis_url, tmp)

    async def ours() -> None:
        c = await _container(env)
        worker = await asyncio.to_thread(start_ours_worker, env)
        try:
            await _wait_done(c, await _submit_many(c, 1, "warm"), 30)
            t0 = time.time()
            ids = await _submit_many(c, n)
            done = await _wait_done(c, ids, 300)
            end = max(d[1] for d in done)
            sat.append((OURS, len(done) / (end - t0), [d[1] - d[0] for d in done], []))
            from agent_infra.agent_app.core.models import RunInput

            pids: list[str] = []

            async def one(i: int) -> None:
                out = await c.service.submit(RunInput(message=f"{i}+1", session_id=f"p{uuid.uuid4().hex[:8]}"))  # type: ignore[attr-defined]
                pids.append(out.task.id)

            await apaced(paced_n, paced_rate, one)
            done = await _wait_done(c, pids, 60)
            created = {}
            import sqlalchemy as sa
            from agent_infra.agent_app.adapters.store.sql import tasks

            async with c.store.engine.connect() as conn:  # type: ignore[attr-defined]
                created = dict((await conn.execute(sa.select(tasks.c.id, tasks.c.created_at))).all())
            starts = await _start_times(c, pids)
            pace.append(
                (OURS, paced_rate, [d[1] - d[0] for d in done],
                 [starts[i] - created[i] for i in pids if i in starts])
            )
        finally:
            worker.terminate()
            worker.wait(30)
            await c.close()  # type: ignore[attr-defined]

    asyncio.run(ours())

    # -- Celery: worker started, one warm-up task completed, then the burst / paced run
    celery_env = ENV_BASE | {"BENCH_REDIS_URL": redis_url}
    sys.path.insert(0, str(ROOT / "benchmarks"))
    os.environ["BENCH_REDIS_URL"] = redis_url
    import app_celery_tasks  # type: ignore[import-not-found]

    def wait_hash(key: str, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while r.hlen(key) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{key}: {r.hlen(key)}/{count} after {timeout}s")
            time.sleep(0.02)

    def collect(key: str) -> list[tuple[float, float]]:
        return [tuple(map(float, v.split(b","))) for v in r.hvals(key)]  # type: ignore[misc]

    r.delete("bench:celery:done")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app_celery_tasks", "worker", "--loglevel", "warning", "-c", "8"],
        env=celery_env,
        cwd=ROOT / "benchmarks",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        app_celery_tasks.noop.delay("warm", time.time())
        wait_hash("bench:celery:done", 1, 60)
        r.delete("bench:celery:done")
        t0 = time.time()
        for i in range(n):
            app_celery_tasks.noop.delay(str(i), time.time())
        wait_hash("bench:celery:done", n)
        vals = collect("bench:celery:done")
        sat.append(("Celery (defaults)", n / (max(v[1] for v in vals) - t0), [v[1] - v[0] for v in vals], []))
        r.delete("bench:celery:done")
        paced(paced_n, paced_rate, lambda i: app_celery_tasks.noop.delay(str(i), time.time()))
        wait_hash("bench:celery:done", paced_n)
        vals = collect("bench:celery:done")
        lat = [v[1] - v[0] for v in vals]
        pace.append(("Celery (defaults)", paced_rate, lat, lat))  # a no-op: start == done
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)

    # -- minimal loop
    r.delete("bench:minimal", "bench:minimal:done")
    loop = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "app_minimal_loop.py")], env=celery_env)
    try:
        r.xadd("bench:minimal", {"id": "warm", "enqueued": str(time.time())})
        wait_hash("bench:minimal:done", 1, 30)
        r.delete("bench:minimal:done")
        t0 = time.time()
        pipe = r.pipeline(transaction=False)
        for i in range(n):
            pipe.xadd("bench:minimal", {"id": str(i), "enqueued": str(time.time())})
            if i % 100 == 99:
                pipe.execute()
        pipe.execute()
        wait_hash("bench:minimal:done", n)
        vals = collect("bench:minimal:done")
        sat.append(("minimal Streams loop", n / (max(v[1] for v in vals) - t0), [v[1] - v[0] for v in vals], []))
        r.delete("bench:minimal:done")
        paced(paced_n, paced_rate, lambda i: r.xadd("bench:minimal", {"id": str(i), "enqueued": str(time.time())}))
        wait_hash("bench:minimal:done", paced_n)
        vals = collect("bench:minimal:done")
        lat = [v[1] - v[0] for v in vals]
        pace.append(("minimal Streams loop", paced_rate, lat, lat))
    finally:
        loop.kill()
        loop.wait(10)

    print(f"\n(b) end to end, {n} tasks enqueued as fast as possible into a started, warmed-up worker (saturation)")
    print(
        f"    agent_app: `agent-app worker --processes {PROCESSES}` ({PROCESSES} worker process(es) x concurrency 32, "
        f"one consumer group; {os.cpu_count()} CPUs);\n    Celery: prefork pool `-c 8` (8 processes), Redis broker, "
        "otherwise defaults"
    )
    print(f"{'':24}{'tasks/s':>10}{'p50 ms':>10}{'p99 ms':>10}   (enqueue -> done)")
    for name, rate, lat, _ in sat:
        print(f"{name:24}{rate:>10.0f}{pct(lat, 50) * 1000:>10.1f}{pct(lat, 99) * 1000:>10.1f}")
    print(
        f"ratio: {sat[0][1] / sat[1][1]:.2f}x Celery (aim >= 1.5), {sat[0][1] / sat[2][1]:.2f}x minimal loop "
        "(aim >= 0.25)"
    )
    store = "PostgreSQL" if (DATABASE_URL or "").startswith("postgres") else "SQLite (WAL, a fresh file)"
    print(
        "persisted per task - agent_app: task record + stream entry (+ idempotency key if sent; Redis), run lock and run\n"
        "  counter, 7 session events and the session history (Redis), the result row in " + store + ";\n"
        "  Celery: the broker message only (no result backend configured: results are not stored) plus the\n"
        "  benchmark's done marker (HSET); minimal loop: the stream entry plus the done marker (HSET)."
    )
    print(f"\n(b) paced: {paced_n} tasks at {paced_rate:.0f}/s")
    print(f"{'':24}{'start p50':>10}{'start p99':>10}{'done p50':>10}{'done p99':>10}   ms from enqueue")
    for name, _rate, done_lat, start_lat in pace:
        print(
            f"{name:24}{pct(start_lat, 50) * 1000:>10.1f}{pct(start_lat, 99) * 1000:>10.1f}"
            f"{pct(done_lat, 50) * 1000:>10.1f}{pct(done_lat, 99) * 1000:>10.1f}"
        )
    print(f"agent_app paced p99 enqueue -> start {pct(pace[0][3], 99) * 1000:.1f} ms (aim < 10)")


def bench_kill(redis_url: str, tmp: str, claim_timeout: float = 5.0) -> None:
    # each task: two model calls of 50 ms = 100 ms of "thinking"
    env = ours_env(
        redis_url,
        tmp,
        AGENT_LLM_THINK_SECONDS="0.05",
        AGENT_QUEUE_CLAIM_TIMEOUT_SECONDS=str(claim_timeout),
        AGENT_WORKER_CONCURRENCY="8",
        AGENT_WORKER_PROCESSES="1",  # the kill test SIGKILLs one worker process
    )

    async def scenario() -> None:
        import sqlalchemy as sa
        from agent_infra.agent_app.adapters.store.sql import tasks

        ids, c = await _submit_ours(env, 200)
        store = c.store  # type: ignore[attr-defined]
        worker = subprocess.Popen([sys.executable, "-m", "agent_infra.agent_app.cli", "worker", "--log-level", "error"], env=env)
        r = c.state.r  # type: ignore[attr-defined]
        while True:  # started = the run counter the worker's start script sets (the SQL row comes at the end)
            started_count = await r.exists(*(f"agent:runs:{i}" for i in ids))
            if started_count >= 50:
                break
            await asyncio.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = time.time()
        worker2 = subprocess.Popen([sys.executable, "-m", "agent_infra.agent_app.cli", "worker", "--log-level", "error"], env=env)
        try:
            done = await _wait_done(c, ids, claim_timeout + 120)
        finally:
            worker2.terminate()
            worker2.wait(30)
        async with store.engine.connect() as conn:
            runs = dict((await conn.execute(sa.select(tasks.c.id, tasks.c.runs))).all())
        last = max(d[1] for d in done) if done else float("nan")
        lost = len(ids) - len(done)
        reran = sum(1 for i in ids if runs.get(i, 0) > 1)
        print("\n(c) kill test: 200 tasks of 100 ms, SIGKILL after 50 started, new worker started")
        print(
            f"lost {lost}, results recorded twice 0 (conditional finish), tasks re-executed after the kill {reran}, "
            f"last completed {last - killed_at:.1f} s after the kill (claim timeout {claim_timeout:.0f} s; "
            f"aim <= {claim_timeout + 5:.0f} s)"
        )
        await c.close()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--paced-tasks", type=int, default=500)
    parser.add_argument("--paced-rate", type=float, default=100.0)
    parser.add_argument("--only", default="accept,e2e,kill")
    parser.add_argument("--database-url", default=None, help="agent_app's task store (default: SQLite file)")
    parser.add_argument("--processes", type=int, default=2, help="agent_app worker processes (default 2: one per CPU)")
    args = parser.parse_args()
    global DATABASE_URL, PROCESSES, OURS
    DATABASE_URL = args.database_url
    PROCESSES = args.processes
    OURS = f"agent_app worker x{PROCESSES}"
    only = set(args.only.split(","))
    if "accept" in only:
        bench_accept()
    if not only & {"e2e", "kill"}:
        return
    print(banner("agent_app end to end and kill test", packages=(*DEFAULT_PACKAGES, "celery", "sqlalchemy")))
    tmp = tempfile.mkdtemp(prefix="agent-bench-")
    try:
        with throwaway_redis(3600) as url:
            if "e2e" in only:
                bench_e2e(url, args.tasks, tmp, args.paced_tasks, args.paced_rate)
            if "kill" in only:
                bench_kill(url, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
