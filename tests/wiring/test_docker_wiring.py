"""The local (Docker) stack's API and worker containers, started from the plan against the plan's
own Redis container command and a local PostgreSQL."""

from __future__ import annotations

import pytest

from tests.wiring.harness import (
    AppProcess,
    StandIns,
    assert_app_reads_everything,
    docker_redis,
    docker_workloads,
    drive_container_flow,
    ensure_database,
    free_port,
    revealed_plan,
    wait_http,
    workdir,
)


@pytest.fixture(scope="module")
def workloads() -> dict[str, object]:
    return {w.name: w for w in docker_workloads(revealed_plan("local"))}


@pytest.mark.parametrize("name", ["agent-api", "agent-worker"])
def test_every_setting_the_containers_get_is_one_the_app_reads(workloads, name) -> None:
    assert_app_reads_everything(workloads[name])


def test_containers_run_the_whole_flow_with_the_plan_configuration(workloads, postgres_server, receiver) -> None:
    plan = revealed_plan("local")
    api, worker = workloads["agent-api"], workloads["agent-worker"]
    assert api.command == ["agent-app", "serve", "--host", "0.0.0.0", "--no-worker"]
    assert worker.command == ["agent-app", "worker"]
    ensure_database(postgres_server, "agent")
    with workdir("wiring-local-") as home:
        redis = docker_redis(plan, home)
        redis.start()
        try:
            api_port, health_port = free_port(), free_port()
            hosts = {"agent-redis:6379": f"127.0.0.1:{redis.port}",
                     "agent-postgres:5432": f"127.0.0.1:{postgres_server.port}"}
            private = {"AGENT_CALLBACK_ALLOW_PRIVATE": "true"}
            with AppProcess(api, StandIns(hosts, {**private, "AGENT_PORT": str(api_port)}), home) as api_proc, \
                    AppProcess(worker, StandIns(hosts, {**private, "AGENT_WORKER_HEALTH_PORT": str(health_port)}),
                               home) as worker_proc:
                url = f"http://127.0.0.1:{api_port}"
                wait_http(f"{url}/readyz", api_proc)
                wait_http(f"http://127.0.0.1:{health_port}/readyz", worker_proc)
                drive_container_flow(url, api.env["AGENT_API_KEYS"].split(",")[0], receiver)
                api_proc.alive()
                worker_proc.alive()
        finally:
            redis.stop()
