"""The k8s stack's API and worker pods, started from the plan against the plan's own Redis (same
script, AOF) and a local PostgreSQL: webhook -> 202 -> worker -> signed callback, task status and
a WebSocket run through Redis Streams."""

from __future__ import annotations

import pytest

from tests.wiring.harness import (
    AppProcess,
    StandIns,
    assert_app_reads_everything,
    drive_container_flow,
    ensure_database,
    free_port,
    kubernetes_redis,
    kubernetes_workloads,
    revealed_plan,
    wait_http,
    workdir,
)


@pytest.fixture(scope="module")
def workloads() -> dict[str, object]:
    return {w.name: w for w in kubernetes_workloads(revealed_plan("k8s"))}


@pytest.mark.parametrize("name", ["agent-api", "agent-worker"])
def test_every_setting_the_pods_get_is_one_the_app_reads(workloads, name) -> None:
    assert_app_reads_everything(workloads[name])


def test_pods_run_the_whole_flow_with_the_plan_configuration(workloads, postgres_server, receiver) -> None:
    plan = revealed_plan("k8s")
    api, worker = workloads["agent-api"], workloads["agent-worker"]
    assert api.command == ["agent-app", "serve", "--host", "0.0.0.0", "--no-worker"]
    assert worker.command == ["agent-app", "worker"]
    ensure_database(postgres_server, "agent")
    with workdir("wiring-k8s-") as home:
        redis = kubernetes_redis(plan, home)
        redis.start()
        try:
            api_port, health_port = free_port(), free_port()
            stand_ins = StandIns(
                hosts={"agent-redis:6379": f"127.0.0.1:{redis.port}",
                       "agent-postgres:5432": f"127.0.0.1:{postgres_server.port}"},
                extra_env={"AGENT_CALLBACK_ALLOW_PRIVATE": "true"})
            api_env = StandIns(stand_ins.hosts, {**stand_ins.extra_env, "AGENT_PORT": str(api_port)})
            worker_env = StandIns(stand_ins.hosts, {**stand_ins.extra_env, "AGENT_WORKER_HEALTH_PORT": str(health_port)})
            with AppProcess(api, api_env, home) as api_proc, AppProcess(worker, worker_env, home) as worker_proc:
                url = f"http://127.0.0.1:{api_port}"
                wait_http(f"{url}/readyz", api_proc)
                wait_http(f"http://127.0.0.1:{health_port}/readyz", worker_proc)
                drive_container_flow(url, api.files["AGENT_API_KEYS"].split(",")[0], receiver,
                                     webhook_secret=api.files.get("AGENT_WEBHOOK_SIGNING_SECRET"))
                api_proc.alive()
                worker_proc.alive()
        finally:
            redis.stop()
