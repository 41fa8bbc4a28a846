"""CloudRunService: limits, probes, secrets by reference, invoker only when public, arg checks."""

from __future__ import annotations

import pytest
from agent_infra.components.errors import ConfigError
from agent_infra.components.gcp.cloud_run_service import CloudRunService, cloud_run_cpu

from agent_infra.offline import Plan, synthesize

BASE = {"location": "us-central1", "image": "us-docker.pkg.dev/p/r/app:1", "service_account_email": "sa@p.iam"}


@pytest.fixture(scope="module")
def worker() -> Plan:
    return synthesize(lambda: CloudRunService("w", {**BASE, "port": 8001, "cpu": 0.5, "cpu_always_allocated": True,
                                                   "environment": {"AGENT_X": "1"},
                                                   "secrets": {"AGENT_API_KEYS": "keys-secret"},
                                                   "transforms": {"service": {"description": "mine"}}}))


def test_internal_by_default_and_no_invoker(worker: Plan) -> None:
    service = worker.one("gcp:cloudrunv2/service:Service", "w")
    assert service.inputs["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert service.inputs["deletionProtection"] is True
    assert not worker.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert service.inputs["description"] == "mine"  # the transform hook


def test_secret_is_a_reference_and_cpu_rounds_up(worker: Plan) -> None:
    app = worker.one("gcp:cloudrunv2/service:Service").get("template.containers")[0]
    assert app["envs"] == [{"name": "AGENT_X", "value": "1"},
                           {"name": "AGENT_API_KEYS",
                            "valueSource": {"secretKeyRef": {"secret": "keys-secret", "version": "latest"}}}]
    assert app["resources"] == {"limits": {"cpu": "1", "memory": "1024Mi"}, "cpuIdle": False,
                                "startupCpuBoost": True}
    assert app["startupProbe"]["httpGet"] == {"path": "/healthz", "port": 8001}


def test_public_service_gets_the_all_users_invoker() -> None:
    plan = synthesize(lambda: CloudRunService("api", {**BASE, "ingress": "all", "public": True}))
    invoker = plan.one("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", "api-public-invoker")
    assert (invoker.inputs["role"], invoker.inputs["member"]) == ("roles/run.invoker", "allUsers")


@pytest.mark.parametrize(("extra", "message"), [
    ({"public": True}, "public: true needs ingress: all"),
    ({"min_instances": 5, "max_instances": 2}, "must not exceed"),
    ({"network_id": "n"}, "set both network_id and subnet_id"),
    ({"environment": {"A": "1"}, "secrets": {"A": "s"}}, "both as plain environment and as secrets"),
])
def test_bad_args_fail_before_registering(extra: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synthesize(lambda: CloudRunService("x", {**BASE, **extra}))


def test_cpu_sizes() -> None:
    assert [cloud_run_cpu(c) for c in (0.25, 1, 1.5, 3, 7, 8)] == [1, 1, 2, 4, 8, 8]
