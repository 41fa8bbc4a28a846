"""The infra half and agent_app agree on environment variable names (settings.py is the contract)."""

from __future__ import annotations

import pytest
from agent_infra.agent_app.settings import ENV_CONTRACT

from agent_infra.offline import run_project

# Names the platforms set that are not app settings: they feed `$(VAR)` expansion in URLs
# (Kubernetes) or libpq's own password lookup (ECS), never the app's settings object.
PLATFORM_ONLY = {"AGENT_REDIS_PASSWORD", "AGENT_POSTGRES_PASSWORD", "PGPASSWORD"}


def env_names(plan) -> set[str]:
    names: set[str] = set()
    for resource in plan.custom_resources():
        if resource.type == "aws:lambda/function:Function":
            names |= set((resource.inputs.get("environment") or {}).get("variables", {}))
        elif resource.type == "aws:ecs/taskDefinition:TaskDefinition":
            import json

            for container in json.loads(resource.inputs["containerDefinitions"]):
                names |= {e["name"] for e in container.get("environment", [])}
                names |= {s["name"] for s in container.get("secrets", [])}
        elif resource.type in ("kubernetes:apps/v1:Deployment",):
            for container in resource.get("spec.template.spec.containers", []):
                names |= {e["name"] for e in container.get("env", [])}
        elif resource.type == "gcp:cloudrunv2/service:Service":
            for container in resource.get("template.containers", []):
                names |= {e["name"] for e in container.get("envs", [])}
        elif resource.type == "kubernetes:core/v1:ConfigMap":
            names |= {k for k in (resource.inputs.get("data") or {}) if k.startswith("AGENT_")}
    return {n for n in names if n.startswith("AGENT_") or n == "PGPASSWORD"}


@pytest.mark.parametrize("stack", ["dev", "prod", "k8s", "gcp"])
def test_every_env_var_a_stack_sets_is_an_app_setting(repo_root, stack):
    names = env_names(run_project(repo_root, stack))
    assert names, "no app environment found in the plan"
    known = ENV_CONTRACT | PLATFORM_ONLY
    unknown = {n for n in names if n not in known and n.removesuffix("_SECRET_ARN") not in known}
    assert not unknown, f"{stack} sets env vars agent_app does not read: {sorted(unknown)}"


def test_worker_health_endpoint_matches_the_app():
    from agent_infra.agent_app import settings
    from agent_infra.components import app_env

    assert app_env.WORKER_HEALTH_PORT == settings.DEFAULT_WORKER_HEALTH_PORT
    assert (app_env.WORKER_HEALTH_PATH, app_env.WORKER_READY_PATH) == (
        settings.HEALTH_LIVENESS_PATH, settings.HEALTH_READINESS_PATH)
    assert "AGENT_WORKER_HEALTH_PORT" in ENV_CONTRACT
