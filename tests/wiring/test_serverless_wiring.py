"""The dev stack's three Lambda functions, invoked in-process with AWS-shaped events and exactly
the environment the plan gives each, against a moto server holding the plan's queues, tables and
secrets: webhook -> 202 -> SQS -> worker -> signed callback, task status, a WebSocket run. Every
AWS call the app makes is recorded and must be allowed by that function's role in the plan."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from agent_infra.agent_app import lambda_handler
from agent_infra.agent_app import settings as app_settings

from tests.app.test_lambda_handler import Context, http_event, management, sqs_record, ws_event
from tests.wiring.aws_calls import denied, iam_requests, record_calls
from tests.wiring.harness import Workload, assert_app_reads_everything, revealed_plan
from tests.wiring.test_app_permissions_table import rows_of

__all__ = ["management"]  # the WebSocket management endpoint stand-in (a fixture)

LAMBDA = "aws:lambda/function:Function"
STAND_IN_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                # the callback receiver is local plain http on a free port
                "AGENT_CALLBACK_ALLOW_PRIVATE": "true", "AGENT_CALLBACK_ALLOWED_PORTS": "[]"}
"""What Lambda's runtime provides (credentials, region) and the local receiver needs."""


def workloads() -> dict[str, Workload]:
    return {f.name: Workload(f.name, [f.inputs["handler"]], dict(f.inputs["environment"]["variables"]))
            for f in revealed_plan("dev").of_type(LAMBDA)}


@pytest.mark.parametrize("name", ["agent-api", "agent-worker", "agent-ws-handler"])
def test_every_variable_a_function_gets_is_one_the_app_reads(name: str) -> None:
    assert_app_reads_everything(workloads()[name])


def create_planned_resources(moto: Any) -> dict[str, str]:
    """The plan's queues, tables and secrets, by the plan's physical names, in the moto server.
    Returns plan secret ARN -> the ARN moto assigned (AWS appends its own random suffix too)."""
    from botocore.exceptions import ClientError

    plan = revealed_plan("dev")
    sqs, ddb, sm = moto.client("sqs"), moto.client("dynamodb"), moto.client("secretsmanager")
    for queue in plan.of_type("aws:sqs/queue:Queue"):
        sqs.create_queue(QueueName=queue.outputs["name"])
    for table in plan.of_type("aws:dynamodb/table:Table"):
        keys = [{"AttributeName": table.inputs["hashKey"], "KeyType": "HASH"}]
        if table.inputs.get("rangeKey"):
            keys.append({"AttributeName": table.inputs["rangeKey"], "KeyType": "RANGE"})
        attrs = [{"AttributeName": a["name"], "AttributeType": a["type"]} for a in table.inputs["attributes"]]
        with contextlib.suppress(ddb.exceptions.ResourceInUseException):
            ddb.create_table(TableName=table.outputs["name"], KeySchema=keys, AttributeDefinitions=attrs,
                             BillingMode="PAY_PER_REQUEST")
    versions = {v.inputs["secretId"]: v.inputs["secretString"]
                for v in plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    arns = {}
    for secret in plan.of_type("aws:secretsmanager/secret:Secret"):
        value = versions[secret.id]
        try:
            arns[secret.outputs["arn"]] = sm.create_secret(Name=secret.inputs["name"], SecretString=value)["ARN"]
        except ClientError:
            arns[secret.outputs["arn"]] = sm.put_secret_value(SecretId=secret.inputs["name"], SecretString=value)["ARN"]
    return arns


DEPLOYED_ARNS: dict[str, str] = {}
"""Plan secret ARN -> the ARN of the deployed stand-in (the one stand-in rewrite of a value)."""


@contextlib.contextmanager
def function_env(workload: Workload, endpoint: str, **extra: str) -> Iterator[None]:
    """os.environ as Lambda would set it for this function: the plan's variables, the runtime's."""

    saved = dict(os.environ)
    planned = {k: DEPLOYED_ARNS.get(v, v) for k, v in workload.env.items()}
    os.environ.clear()
    os.environ.update({"PATH": saved.get("PATH", ""), "HOME": saved.get("HOME", "/tmp"), **planned,
                       **STAND_IN_ENV, "AWS_ENDPOINT_URL": endpoint, **extra})
    app_settings._secret_cache.clear()  # resolve each *_SECRET_ARN again, through moto
    lambda_handler.reset()
    try:
        yield
    finally:
        lambda_handler.reset()
        os.environ.clear()
        os.environ.update(saved)


def role_policies(name: str) -> list[str]:
    plan = revealed_plan("dev")
    return [p.inputs["policy"] for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == f"{name}-policy"]


def test_functions_run_the_whole_flow_with_least_privilege(moto_server, receiver, management) -> None:
    plan = revealed_plan("dev")
    DEPLOYED_ARNS.update(create_planned_resources(moto_server))
    planned_arn = {deployed: planned for planned, deployed in DEPLOYED_ARNS.items()}
    fns = workloads()
    key = next(v.inputs["secretString"] for v in plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")
               if v.name.endswith("-api-keys-version")).split(",")[0]
    ws = next(a for a in plan.of_type("aws:apigatewayv2/api:Api") if a.inputs["protocolType"] == "WEBSOCKET")
    stage = next(s.inputs["name"] for s in plan.of_type("aws:apigatewayv2/stage:Stage") if s.parent == ws.parent)
    ws_api = f"{ws.outputs['executionArn']}/{stage}"  # the plan's own stage: ManageConnections is granted on it
    requests: dict[str, list[tuple[str, str]]] = {name: [] for name in fns}

    def call_api(method: str, path: str, body: Any = None, **headers: str) -> dict[str, Any]:
        with function_env(fns["agent-api"], moto_server.endpoint), record_calls() as calls:
            response = lambda_handler.handler(http_event(method, path, body, headers), Context())
        requests["agent-api"] += [r for c in calls for r in iam_requests(*c)]
        return response

    assert call_api("GET", "/v1/tasks/task_x")["statusCode"] == 401  # keys are enforced
    accepted = call_api("POST", "/webhook", {"message": "what is 2+3", "callback_url": receiver.url},
                        **{"x-api-key": key})
    assert accepted["statusCode"] == 202, accepted["body"]
    task_id = json.loads(accepted["body"])["task_id"]

    # The event source mapping: receive from the plan's queue, hand the batch to the worker.
    sqs = moto_server.client("sqs")
    queue_url = fns["agent-worker"].env["AGENT_QUEUE_URL"]
    arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[-1]}"
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                   MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"])["id"] for m in messages] == [task_id]
    with function_env(fns["agent-worker"], moto_server.endpoint), record_calls() as calls:
        result = lambda_handler.queue_handler({"Records": [sqs_record(m, arn) for m in messages]}, Context())
    requests["agent-worker"] += [r for c in calls for r in iam_requests(*c)]
    assert result == {"batchItemFailures": []}
    assert receiver.event.wait(30), "no callback"
    assert receiver.received[0]["json"]["data"]["result"] == "The answer is 5."

    status = call_api("GET", f"/v1/tasks/{task_id}", **{"x-api-key": key})
    assert status["statusCode"] == 200 and json.loads(status["body"])["status"] == "success"

    conn = "wiringConnId="
    with function_env(fns["agent-ws-handler"], moto_server.endpoint,
                      AGENT_WS_MANAGEMENT_ENDPOINT=management.endpoint), record_calls() as calls:
        connected = lambda_handler.websocket_handler(ws_event("$connect", conn, headers={"X-Api-Key": key}),
                                                     Context())
        assert connected["statusCode"] == 200, connected
        ran = lambda_handler.websocket_handler(ws_event("$default", conn, {"message": "what is (1+2)*3"}), Context())
        assert ran["statusCode"] == 200, ran
        assert lambda_handler.websocket_handler(ws_event("$disconnect", conn), Context())["statusCode"] == 200
    requests["agent-ws-handler"] += [r for c in calls for r in iam_requests(*c, ws_api=ws_api)]
    chunks = [c for _, _, c in management.posts]
    assert [c["type"] for c in chunks] == ["thinking", "action", "observation", "thinking", "result"]
    assert chunks[-1]["content"] == "The answer is 9."

    for name, made in requests.items():
        made = [(action, planned_arn.get(resource, resource)) for action, resource in made]
        assert made, f"{name} made no AWS call"
        assert not denied(role_policies(name), made), f"{name}: its role does not allow {denied(role_policies(name), made)}"
        assert {action for action, _ in made} <= rows_of("dev", f"{name}-policy"), f"{name}: a call the table lacks"
