"""Auth hygiene from outside: wrong-key floods are throttled per source, keys in URLs work only on
the WebSocket and never reach a log line, limits hold across API instances (shared Redis), the
OpenAPI document names its security schemes and every body, booleans are booleans."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.app.conftest import RedisProcess, free_port, wait_port
from tests.app.test_api import KEY, auth, serve


def test_wrong_key_flood_is_throttled_per_source(tmp_path: Path) -> None:
    with serve(tmp_path, None, auth_failures_per_minute=10) as srv:
        codes = [httpx.get(f"{srv.url}/v1/tasks/x", headers=auth(f"wrong-{i}")).status_code for i in range(30)]
        assert codes[:10] == [403] * 10 and set(codes[10:]) == {429}, codes
        limited = httpx.get(f"{srv.url}/v1/tasks/x", headers=auth())
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1  # even a right key, for now
        assert httpx.get(f"{srv.url}/healthz").status_code == 200  # probes never need a key


def test_rate_limit_is_shared_across_api_instances(tmp_path: Path, redis_server: RedisProcess) -> None:
    limit = 10
    key = f"shared-{uuid.uuid4().hex[:8]}"  # a fresh key: a fresh window in the shared store
    with serve(tmp_path, redis_server, rate_limit_per_minute=limit, api_keys=key) as one, serve(
        tmp_path, redis_server, rate_limit_per_minute=limit, api_keys=key
    ) as two:
        codes = [httpx.get(f"{(one, two)[i % 2].url}/v1/tasks/none", headers=auth(key)).status_code for i in range(2 * limit)]
    # two instances allow the limit once between them, not twice (each alone would allow 10)
    assert codes.count(404) == limit and codes.count(429) == limit, codes


def test_openapi_declares_security_and_every_body_and_types_are_strict(tmp_path: Path) -> None:
    with serve(tmp_path, None) as srv:
        spec = httpx.get(f"{srv.url}/openapi.json").json()
        schemes = spec["components"]["securitySchemes"]
        assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        assert schemes["Bearer"]["scheme"] == "bearer" and schemes["StandardWebhooks"]["name"] == "webhook-signature"
        hook = spec["paths"]["/webhook"]["post"]
        body = hook["requestBody"]["content"]["application/json"]["schema"]
        assert body["required"] == ["message"] and "callback_url" in body["properties"]
        assert {"ApiKey": []} in hook["security"] and {"StandardWebhooks": []} in hook["security"]
        assert spec["paths"]["/metrics"]["get"]["security"]
        for bad in (0, 1, "true", "yes"):
            r = httpx.post(f"{srv.url}/v1/runs", headers=auth(), json={"message": "hi", "stream": bad})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "stream"], (bad, r.text)
    with serve(tmp_path, None, api_keys=None) as anonymous:  # loopback dev, no keys: nothing claimed
        spec = httpx.get(f"{anonymous.url}/openapi.json").json()
        assert "securitySchemes" not in spec.get("components", {})
        assert all("security" not in op for item in spec["paths"].values() for op in item.values())


async def _ws_with_query_key(port: int) -> str:
    async with connect(f"ws://127.0.0.1:{port}/agent/logs-1?api_key={KEY}") as ws:
        await ws.send(json.dumps({"message": "1+1"}))
        async with asyncio.timeout(15):
            while True:
                msg = json.loads(await ws.recv())
                if msg["type"] in ("result", "error"):
                    return str(msg["content"])


def test_query_keys_only_on_websocket_and_redacted_from_every_log_line(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {
        **os.environ,
        "AGENT_API_KEYS": KEY,
        "AGENT_PORT": str(port),
        "AGENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        "AGENT_SECRETS_DIR": str(tmp_path / "no-secrets"),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_infra.agent_app.cli", "serve", "--log-level", "debug"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_port(port, 30)
            base = f"http://127.0.0.1:{port}"
            # HTTP: a key in the URL is not a credential (browsers can send headers here)
            assert httpx.get(f"{base}/v1/tasks/x?api_key={KEY}").status_code == 401
            assert httpx.get(f"{base}/v1/tasks/x?api_key={KEY}", headers=auth()).status_code == 404
            assert asyncio.run(_ws_with_query_key(port)) == "The answer is 2."
            time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
    text = log_path.read_text()
    assert "api_key=[redacted]" in text, text[-2000:]
    assert KEY not in text


def test_leased_counting_never_exceeds_the_shared_limit(redis_server: RedisProcess) -> None:
    """Hot keys are counted in leases (up to 50 hits per store call); two instances sharing one
    Redis still allow at most the limit in a window, and lose at most a lease each."""
    from agent_infra.agent_app.api.security import RateLimiter, limiter_storage_uri

    async def main() -> int:
        uri = limiter_storage_uri(redis_server.url)
        one, two = RateLimiter.from_uri(1_000, uri), RateLimiter.from_uri(1_000, uri)
        key = f"lease-{uuid.uuid4().hex[:8]}"
        allowed = 0
        try:
            for i in range(1_500):
                if await (one, two)[i % 2].hit(key) is None:
                    allowed += 1
        finally:
            await one.close()
            await two.close()
        return allowed

    allowed = asyncio.run(main())
    assert 1_000 - 2 * 50 <= allowed <= 1_000, allowed
