"""A 202 survives a restart of the queue's store: the k8s stack's Redis (the plan's own script:
AOF on the data volume) is SIGKILLed with accepted tasks pending and restarted on the same data.

The control case strips the persistence flags from the same script and must lose tasks, so the
test can tell a persistent store from one that is not."""

from __future__ import annotations

import json

import httpx
import pytest
import redis as redis_client

from tests.wiring.harness import (
    AppProcess,
    StandIns,
    ensure_database,
    free_port,
    kubernetes_redis,
    kubernetes_workloads,
    revealed_plan,
    signed_headers,
    wait_http,
    workdir,
)

ACCEPTED = 50
"""Tasks accepted (202) before the kill: under the plan's own rate limit (60 per minute per key)."""


def stream_task_ids(url: str) -> set[str]:
    client = redis_client.Redis.from_url(url)
    try:
        return {json.loads(fields[b"task"])["id"] for _, fields in client.xrange("agent:tasks")}
    finally:
        client.close()


@pytest.mark.parametrize("persistent", [True, False], ids=["plan-config", "control-no-aof"])
def test_accepted_tasks_survive_a_kill_of_the_in_cluster_redis(persistent, postgres_server) -> None:
    plan = revealed_plan("k8s")
    api = next(w for w in kubernetes_workloads(plan) if w.name == "agent-api")
    key = api.files["AGENT_API_KEYS"].split(",")[0]
    ensure_database(postgres_server, "agent")
    with workdir("wiring-durability-") as home:
        redis = kubernetes_redis(plan, home)
        assert "--appendonly yes" in redis.script and "--appendfsync everysec" in redis.script
        if not persistent:
            redis.script = redis.script.replace("--appendonly yes", "--appendonly no --save ''")
        redis.start()
        password = (home / "redis-password").read_text()
        local_url = f"redis://:{password}@127.0.0.1:{redis.port}/0"
        port = free_port()
        stand_ins = StandIns({"agent-redis:6379": f"127.0.0.1:{redis.port}",
                              "agent-postgres:5432": f"127.0.0.1:{postgres_server.port}"},
                             {"AGENT_PORT": str(port)})
        accepted: list[str] = []
        try:
            with AppProcess(api, stand_ins, home) as api_proc:  # no worker: every task stays pending
                url = f"http://127.0.0.1:{port}"
                wait_http(f"{url}/readyz", api_proc)
                with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
                    for index in range(ACCEPTED):
                        body = json.dumps({"message": f"what is {index}+1"}).encode()
                        response = client.post(f"{url}/webhook", content=body, headers={
                            "content-type": "application/json",
                            **signed_headers(api.files.get("AGENT_WEBHOOK_SIGNING_SECRET"), body)})
                        assert response.status_code == 202, response.text
                        accepted.append(response.json()["task_id"])
                redis.kill()  # right after the last 202: no shutdown save, no grace
            redis.start()
            lost = set(accepted) - stream_task_ids(local_url)
        finally:
            redis.stop()
    if persistent:
        assert not lost, f"{len(lost)} of {len(accepted)} accepted tasks lost"
    else:
        assert lost, "the control without AOF lost nothing: the kill did not test persistence"
