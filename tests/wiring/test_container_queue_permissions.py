"""The SQS adapter's producer and consumer calls (the ECS API and worker of the prod stack), made
against moto with the plan's queue URLs and recorded: each must be allowed by that service's
planned task role, dead-lettering included (the adapter moves a task to the DLQ itself after
`AGENT_QUEUE_MAX_ATTEMPTS`; the redrive policy is only the backstop for crashed consumers)."""

from __future__ import annotations

import asyncio
import json

from agent_infra.agent_app.adapters.queue.sqs import SqsQueue
from agent_infra.agent_app.core.models import Task

from tests.wiring.aws_calls import denied, iam_requests, record_calls
from tests.wiring.harness import env_list, revealed_plan
from tests.wiring.test_app_permissions_table import rows_of


def task_env(service: str) -> dict[str, str]:
    task = revealed_plan("prod").one("aws:ecs/taskDefinition:TaskDefinition", f"agent-{service}")
    return env_list(json.loads(task.inputs["containerDefinitions"])[0]["environment"])


def task_policies(service: str) -> list[str]:
    return [revealed_plan("prod").one("aws:iam/rolePolicy:RolePolicy", f"agent-{service}-task").inputs["policy"]]


def test_api_sends_and_worker_consumes_and_dead_letters_within_their_roles(moto_server) -> None:
    api_env, worker_env = task_env("api"), task_env("worker")
    sqs = moto_server.client("sqs")
    for url in (worker_env["AGENT_QUEUE_URL"], worker_env["AGENT_QUEUE_DLQ_URL"]):
        sqs.create_queue(QueueName=url.rsplit("/", 1)[-1])

    def queue(env: dict[str, str]) -> SqsQueue:
        return SqsQueue(queue_url=env["AGENT_QUEUE_URL"], dlq_url=env.get("AGENT_QUEUE_DLQ_URL"), max_attempts=2,
                        sqs_client=sqs)

    async def produce() -> None:
        await queue(api_env).submit(Task(session_id="s", message="1+1"), None, 3600)

    async def consume() -> None:
        worker = queue(worker_env)
        delivery = await worker.claim("w1", 30, block_seconds=5)
        assert delivery is not None
        await worker.extend(delivery, 30)
        await worker.release(delivery)  # handed back: re-sent to the queue with its attempt count
        again = await worker.claim("w1", 30, block_seconds=5)
        assert again is not None and again.attempt == 2
        await worker.release(again)  # attempts exhausted: moved to the DLQ by the adapter

    with record_calls() as api_calls:
        asyncio.run(produce())
    with record_calls() as worker_calls:
        asyncio.run(consume())
    moved = sqs.receive_message(QueueUrl=worker_env["AGENT_QUEUE_DLQ_URL"], WaitTimeSeconds=1)["Messages"]
    assert [json.loads(m["Body"])["session_id"] for m in moved] == ["s"]
    api_requests = [r for c in api_calls for r in iam_requests(*c)]
    worker_requests = [r for c in worker_calls for r in iam_requests(*c)]
    assert {a for a, _ in api_requests} <= rows_of("prod", "agent-api-task")
    assert {a for a, _ in worker_requests} <= rows_of("prod", "agent-worker-task")
    assert not denied(task_policies("api"), api_requests)
    assert not denied(task_policies("worker"), worker_requests), denied(task_policies("worker"), worker_requests)
