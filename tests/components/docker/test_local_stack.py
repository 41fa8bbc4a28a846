"""The `local` example stack: the hybrid topology on one machine with Docker."""

from __future__ import annotations

from typing import Any

import pytest

from agent_infra.offline import Plan, run_project

CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module")
def plan(repo_root: Any) -> Plan:
    return run_project(repo_root, "local")


def test_local_stack_creates_network_data_and_app_containers(plan: Plan) -> None:
    assert {t: c for t, c in plan.count_by_type().items() if not t.startswith("agent-infra:")} == {
        "docker-build:index:Image": 1, "docker:index/container:Container": 4, "docker:index/network:Network": 2,
        "docker:index/remoteImage:RemoteImage": 2, "docker:index/volume:Volume": 2}
    assert plan.outputs["endpoint"] == "http://localhost:8000"


def test_every_container_is_health_checked_and_restarts(plan: Plan) -> None:
    for container in plan.of_type(CONTAINER):
        assert container.inputs["healthcheck"]["tests"][0] in ("CMD", "CMD-SHELL"), container.name
        assert container.inputs["restart"] == "unless-stopped", container.name
        assert "no-new-privileges:true" in container.inputs["securityOpts"], container.name


def test_app_containers_are_hardened_and_published_on_loopback(plan: Plan) -> None:
    for name in ("agent-api", "agent-worker"):
        app = plan.one(CONTAINER, name).inputs
        assert (app["user"], app["readOnly"], app["capabilities"]) == ("10001:10001", True, {"drops": ["ALL"]})
        assert app["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=256m"}
        assert app["envs"] == "[secret]"  # passwords and keys ride in env: the whole list is secret
        assert [n["name"] for n in app["networksAdvanced"]] == ["agent-backend", "agent-egress"]
    api = plan.one(CONTAINER, "agent-api").inputs
    assert api["ports"] == [{"internal": 8000, "external": 8000, "ip": "127.0.0.1"}]
    assert api["command"] == ["agent-app", "serve", "--host", "0.0.0.0", "--no-worker"]
    assert plan.one(CONTAINER, "agent-worker").inputs["stopTimeout"] == 330


def test_data_containers_sit_on_the_internal_network_only(plan: Plan) -> None:
    assert plan.one("docker:index/network:Network", "agent-backend").inputs["internal"] is True
    for name in ("agent-redis", "agent-postgres"):
        data = plan.one(CONTAINER, name).inputs
        assert [n["name"] for n in data["networksAdvanced"]] == ["agent-backend"]
        assert "ports" not in data
        assert data["envs"] == "[secret]"
    images = {i.inputs["name"] for i in plan.of_type("docker:index/remoteImage:RemoteImage")}
    assert images == {"redis:7.4.2-alpine", "pgvector/pgvector:0.8.0-pg17"}


def test_data_containers_run_as_their_image_user_on_a_read_only_root(plan: Plan) -> None:
    from agent_infra.components.docker.local import POSTGRES_MOUNT, POSTGRES_PGDATA

    redis = plan.one(CONTAINER, "agent-redis").inputs
    # Official redis alpine image: user redis is 999, group 1000; it owns /data.
    assert (redis["user"], redis["readOnly"]) == ("999:1000", True)
    assert redis["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert [v["containerPath"] for v in redis["volumes"]] == ["/data"]
    postgres = plan.one(CONTAINER, "agent-postgres").inputs
    # pgvector/pgvector builds on the Debian postgres image: user postgres is 999:999.
    assert (postgres["user"], postgres["readOnly"]) == ("999:999", True)
    assert postgres["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m",
                                 "/var/run/postgresql": "rw,noexec,nosuid,size=1m,mode=1777"}
    assert postgres["capabilities"] == {"drops": ["ALL"]}
    assert [v["containerPath"] for v in postgres["volumes"]] == [POSTGRES_MOUNT]
    # PGDATA below the mount point: postgres creates it 0700 itself, no chown of the volume root.
    assert POSTGRES_PGDATA.startswith(POSTGRES_MOUNT + "/")


def test_worker_health_check_calls_its_health_endpoint(plan: Plan) -> None:
    worker = plan.one(CONTAINER, "agent-worker").inputs
    assert worker["healthcheck"]["tests"] == [
        "CMD-SHELL", "python -c \"import urllib.request as u; "
                     "u.urlopen('http://127.0.0.1:8001/healthz', timeout=3)\" || exit 1"]
    assert "ports" not in worker  # the health port is for Docker's check only


def test_worker_alone_gets_the_health_port_setting() -> None:
    """The env lists are secret in the plan (they carry passwords), so read them off the component."""
    import pulumi
    from agent_infra.components.config import load_deployment
    from agent_infra.components.docker.local import HybridAgent

    from agent_infra.offline import synthesize

    seen: dict[str, list[str]] = {}

    def program() -> None:
        config = load_deployment({"cloud": "docker", "topology": "hybrid", "environment": "dev",
                                  "app": {"image": "ghcr.io/example/agent-app:1.0.0"}})
        agent = HybridAgent("agent", config)
        for role in ("api", "worker"):
            agent_container = getattr(agent, role)
            agent_container.envs.apply(lambda envs, role=role: seen.__setitem__(role, list(envs)))
        pulumi.export("done", True)

    synthesize(program, stack="local", config={"agent-infra:redisPassword": "r-test", "agent-infra:postgresPassword":
                                               "p-test"}, secret_keys=["agent-infra:redisPassword",
                                                                       "agent-infra:postgresPassword"])
    assert "AGENT_WORKER_HEALTH_PORT=8001" in seen["worker"]
    assert not any(e.startswith("AGENT_WORKER_HEALTH_PORT=") for e in seen["api"])
