"""Webhook accept path under wrk: agent_app vs a bare FastAPI endpoint, and wrk's own ceiling.

    python benchmarks/accept_wrk.py [--duration 10] [--connections 32] [--runs 3]

Three servers on 127.0.0.1, all under the same uvicorn settings (``agent_infra.agent_app.cli.UVICORN_OPTIONS``,
what ``agent-app serve`` runs), load from wrk (one thread, C connections, D seconds, POST with a
fresh JSON body and Idempotency-Key per request):

* ``trivial``: an ASGI app that reads the body and answers 202 - no FastAPI, no Redis. It shows
  how fast this wrk on this machine can go; if it is not several times the others, the client
  (or the machine) is the bottleneck and the ratios below mean nothing.
* ``bare``: FastAPI + a pydantic body model + one XADD + 202 (what a hand-written endpoint does).
* ``bare + gc.freeze()``: the same, with the one start-up change agent_app makes (see docs), so
  the comparison shows what is left once both sides have it.
* ``ours``: ``agent-app serve --no-worker`` with the Redis queue and state, an API key, the rate
  limit on (set high enough never to reject, so the check runs on every request), the
  Idempotency-Key honoured, the task record + stream entry written in one Lua script before 202.

Each server gets a 2 s warm-up, then the three are measured in turn, ``--runs`` rounds; the
figures are medians per server; ``CPU ms/req`` is the server process's own CPU time (user + system)
per answered request, which other load on a shared machine does not change much. Any non-202 fails
the run. A throwaway redis-server is started
for it (never the machine's); everything is killed after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_env import banner, free_port, throwaway_redis, wait_port  # noqa: E402

ENV_BASE = {**os.environ, "PYTHONPATH": str(ROOT)}

# One fresh body and Idempotency-Key per request, so every request is a new task (no replays).
WRK_SCRIPT = """
local counter = 0
local prefix = "unset"
-- wrk does not seed math.random: the run's unique prefix comes from the command line (after --)
init = function(args) prefix = args[1] end
request = function()
  counter = counter + 1
  local body = '{"message":"' .. counter .. '+1"}'
  local headers = {["Content-Type"] = "application/json", ["X-API-Key"] = "bench",
                   ["Idempotency-Key"] = prefix .. "-" .. counter}
  return wrk.format("POST", nil, headers, body)
end
"""

# The server launcher: the same uvicorn.run() options as `agent-app serve`.
LAUNCH = """
import importlib, sys, uvicorn
from agent_infra.agent_app.cli import UVICORN_OPTIONS
module, attr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = getattr(importlib.import_module(module), attr)
if len(sys.argv) > 4 and sys.argv[4] == "freeze":  # what agent_app does after start-up
    import gc
    gc.collect()
    gc.freeze()
uvicorn.run(app, host="127.0.0.1", port=port,
            log_level="warning", **UVICORN_OPTIONS)
"""

TRIVIAL_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})
"""

BARE_APP = """
import os, redis.asyncio as r
from fastapi import FastAPI
from pydantic import BaseModel, Field
app = FastAPI()
client = r.Redis.from_url(os.environ["BENCH_REDIS_URL"])
class Body(BaseModel):
    message: str = Field(min_length=1)
@app.post("/webhook", status_code=202)
async def hook(body: Body):
    task_id = await client.xadd("bench:bare", {"task": body.model_dump_json()})
    return {"task_id": task_id.decode()}
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparsed wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/sec, p50 and p99 (ms) and the error counts of one ``wrk --latency`` run."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rate": rate, "p50": p50, "p99": p99, "requests": total,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": 1 if errors else 0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, script: str, duration: float, connections: int, pid: int | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s", "-s", script, url,
           "--", uuid.uuid4().hex]
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    result = parse_wrk(out)
    # The server's own CPU per request: what the code costs, whatever else the machine is doing.
    result["cpu_ms"] = (cpu_seconds(pid) - cpu0) * 1000 / max(1, result["requests"]) if pid else float("nan")
    if result["non2xx"] or result["socket_errors"]:
        raise SystemExit(f"{url}: wrk saw errors (non-2xx {result['non2xx']}):\n{out}")
    return result


def start(argv: list[str], env: dict[str, str], cwd: str, port: int) -> subprocess.Popen[bytes]:
    # stderr to a file, not a pipe: a full pipe would stall the server (wrk's disconnects at the end
    # of each run are logged with tracebacks).
    log = Path(cwd, f"server-{port}.log")
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stderr=err)
    try:
        wait_port(port, proc=proc)
    except SystemExit:
        proc.kill()
        raise SystemExit(f"{argv}: {log.read_text()[-2000:]}") from None
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="hard bound on the whole benchmark")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    print(banner("webhook accept under wrk", tools=[["wrk", "--version"], ["redis-server", "--version"]]))
    tmp = tempfile.mkdtemp(prefix="agent-bench-accept-")
    Path(tmp, "post.lua").write_text(WRK_SCRIPT)
    Path(tmp, "launch.py").write_text(LAUNCH)
    Path(tmp, "trivial_app.py").write_text(TRIVIAL_APP)
    Path(tmp, "bare_app.py").write_text(BARE_APP)
    procs: list[subprocess.Popen[bytes]] = []
    watchdog = threading.Timer(args.max_seconds, lambda: [p.kill() for p in procs])
    watchdog.daemon = True
    watchdog.start()
    try:
        with throwaway_redis(args.max_seconds + 60) as redis_url:
            env = ENV_BASE | {"BENCH_REDIS_URL": redis_url, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp}"}
            ours_env = env | {
                "AGENT_QUEUE_BACKEND": "redis",
                "AGENT_STATE_BACKEND": "redis",
                "AGENT_REDIS_URL": redis_url,
                "AGENT_API_KEYS": "bench",
                "AGENT_RATE_LIMIT_PER_MINUTE": "100000000",  # checked on every request, never reached
                "AGENT_QUEUE_STREAM": f"bench:{uuid.uuid4().hex[:6]}",
                "AGENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/accept.db",
            }
            launch = [sys.executable, "launch.py"]
            servers: dict[str, tuple[list[str], dict[str, str]]] = {  # argv with {port}, env
                "trivial ASGI 202 (wrk ceiling)": ([*launch, "trivial_app", "app", "{port}"], env),
                "bare FastAPI + XADD": ([*launch, "bare_app", "app", "{port}"], env),
                "bare + gc.freeze()": ([*launch, "bare_app", "app", "{port}", "freeze"], env),
                "agent_app /webhook": ([sys.executable, "-m", "agent_infra.agent_app.cli", "serve", "--no-worker",
                                        "--log-level", "warning", "--port", "{port}"], ours_env),
            }
            urls: dict[str, str] = {}
            pids: dict[str, int] = {}
            for name, (argv, server_env) in servers.items():
                port = free_port()
                argv = [a.replace("{port}", str(port)) for a in argv]
                procs.append(start(argv, server_env, tmp, port))
                urls[name] = f"http://127.0.0.1:{port}/webhook"
                pids[name] = procs[-1].pid
            script = str(Path(tmp, "post.lua"))
            for url in urls.values():  # warm-up: connections, pools, scripts loaded, code paths hot
                run_wrk(url, script, 2, args.connections)
            results: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
            for _ in range(args.runs):
                for name, url in urls.items():
                    results[name].append(run_wrk(url, script, args.duration, args.connections, pids[name]))
            # Every answered request must have made a new task (a replayed Idempotency-Key would not).
            import redis

            created = redis.Redis.from_url(redis_url).xlen(ours_env["AGENT_QUEUE_STREAM"])
            answered = sum(int(r["requests"]) for r in results["agent_app /webhook"])
            if created < answered:
                raise SystemExit(f"agent_app created {created} tasks for {answered} answered requests: replays?")
    finally:
        watchdog.cancel()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {name: {k: statistics.median(r[k] for r in runs) for k in ("rate", "p50", "p99", "cpu_ms")}
           for name, runs in results.items()}
    print(f"\nagent_app: {created} tasks in its stream for {answered} requests answered in the timed runs "
          "(warm-up included in the first figure): every request was a new task")
    print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s --latency, median of {args.runs} rounds "
          "(servers measured in turn each round), every response 202")
    print(f"{'':32}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}   per-run req/s")
    for name, m in med.items():
        per_run = " ".join(f"{r['rate']:.0f}" for r in results[name])
        print(f"{name:32}{m['rate']:>9.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}{m['cpu_ms']:>12.3f}   {per_run}")
    trivial, bare, frozen, ours = (med[n] for n in urls)
    print(f"wrk headroom: the trivial endpoint reaches {trivial['rate'] / bare['rate']:.1f}x the bare endpoint's rate "
          f"(the client is not what limits the others if this is well above 1)")
    print(f"ratio: agent_app {ours['rate'] / bare['rate']:.2f}x the bare rate (aim >= 0.75), "
          f"p99 {ours['p99'] / bare['p99']:.2f}x the bare p99 (aim <= 1.5)")
    print(f"       server CPU per request: agent_app {ours['cpu_ms'] / bare['cpu_ms']:.2f}x the bare endpoint's "
          "(insensitive to other load on the machine)")
    print(f"       against the bare endpoint with the same gc.freeze(): {ours['rate'] / frozen['rate']:.2f}x the rate, "
          f"p99 {ours['p99'] / frozen['p99']:.2f}x")


if __name__ == "__main__":
    main()
