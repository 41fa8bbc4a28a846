"""The ECS tasks (prod) and Cloud Run services (gcp): every variable and secret the plan gives a
container is a setting agent_app reads (or a library variable it relies on), with the plan's value.
Secrets are injected by the platform as values; here each gets a stand-in value of its kind."""

from __future__ import annotations

import json

import pytest

from tests.wiring.harness import Workload, assert_app_reads_everything, env_list, revealed_plan

STAND_IN_SECRET = {"AGENT_REDIS_URL": "rediss://:token@redis.internal:6379/0", "PGPASSWORD": "pw",
                   "AGENT_API_KEYS": "key-1", "AGENT_WEBHOOK_SIGNING_SECRET": "whsec-1",
                   "AGENT_CALLBACK_SIGNING_SECRET": "whsec-2"}


def ecs_workloads() -> list[Workload]:
    out = []
    for task in revealed_plan("prod").of_type("aws:ecs/taskDefinition:TaskDefinition"):
        container = json.loads(task.inputs["containerDefinitions"])[0]
        env = env_list(container["environment"])
        env.update({s["name"]: STAND_IN_SECRET[s["name"]] for s in container["secrets"]})
        out.append(Workload(task.name, container["command"], env))
    return out


def cloud_run_workloads() -> list[Workload]:
    out = []
    for service in revealed_plan("gcp").of_type("gcp:cloudrunv2/service:Service"):
        container = service.get("template.containers")[0]
        env = {e["name"]: e["value"] for e in container["envs"] if "value" in e}
        env.update({e["name"]: STAND_IN_SECRET[e["name"]] for e in container["envs"] if "valueSource" in e})
        out.append(Workload(service.name, container["commands"], env))
    return out


@pytest.mark.parametrize("workload", ecs_workloads() + cloud_run_workloads(), ids=lambda w: w.name)
def test_every_setting_a_container_gets_is_one_the_app_reads(workload: Workload) -> None:
    assert_app_reads_everything(workload)


@pytest.mark.parametrize("workload", ecs_workloads() + cloud_run_workloads(), ids=lambda w: w.name)
def test_the_database_url_is_one_the_apps_driver_accepts(workload: Workload) -> None:
    # The app connects with SQLAlchemy + asyncpg. Pointed at a closed local port, a URL the driver
    # accepts fails to *connect*; one it does not (libpq's `sslmode=`) fails before, on its arguments.
    import asyncio
    import os

    from agent_infra.agent_app.settings import Settings
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.wiring.harness import free_port

    planned = workload.env["AGENT_DATABASE_URL"]
    host = planned.split("@", 1)[1].split("/", 1)[0]
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update({**workload.env, "AGENT_DATABASE_URL": planned.replace(host, f"127.0.0.1:{free_port()}")})
        url = Settings().sqlalchemy_url
    finally:
        os.environ.clear()
        os.environ.update(saved)

    async def connect() -> BaseException:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("select 1"))
        except Exception as error:  # the kind of failure is the assertion
            return error
        finally:
            await engine.dispose()
        raise AssertionError("connected to a closed port")

    error = asyncio.run(connect())
    assert isinstance(error, OSError), f"{workload.name}: {type(error).__name__}: {error}"
