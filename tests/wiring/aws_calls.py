"""Which AWS API calls agent_app makes, as IAM sees them, and whether a role's policy allows them.

`record_calls` captures every botocore call of this process (service, operation, parameters);
`iam_requests` turns each into the IAM (action, resource ARN) pairs AWS authorises it by — a
TransactWriteItems is one request per item (PutItem, ConditionCheckItem ...), PostToConnection is
execute-api:ManageConnections on the connection's ARN. `denied` evaluates a policy document's
Allow statements (action and resource wildcards as IAM matches them).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlparse

ACCOUNT, REGION = "123456789012", "us-east-1"

SERVICE_PREFIX = {"sqs": "sqs", "dynamodb": "dynamodb", "secretsmanager": "secretsmanager",
                  "bedrock-runtime": "bedrock", "apigatewaymanagementapi": "execute-api", "ecs": "ecs"}
OPERATION_ACTION = {("apigatewaymanagementapi", "PostToConnection"): "ManageConnections",
                    ("apigatewaymanagementapi", "DeleteConnection"): "ManageConnections",
                    ("apigatewaymanagementapi", "GetConnection"): "ManageConnections",
                    ("bedrock-runtime", "Converse"): "InvokeModel",
                    ("bedrock-runtime", "ConverseStream"): "InvokeModelWithResponseStream"}
TRANSACT_ITEM_ACTION = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                        "ConditionCheck": "ConditionCheckItem"}


@contextlib.contextmanager
def record_calls() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    from botocore.client import BaseClient

    calls: list[tuple[str, str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation_name, dict(api_params)))
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = recording  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def queue_arn(url: str) -> str:
    account, name = urlparse(url).path.strip("/").split("/")[-2:]
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def iam_requests(service: str, operation: str, params: dict[str, Any],
                 ws_api: str | None = None) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs one API call needs (`ws_api`: the WebSocket API's execution ARN
    and stage, `arn:...:<api id>/<stage>`)."""
    prefix = SERVICE_PREFIX[service]
    if service == "dynamodb" and operation == "TransactWriteItems":
        out = []
        for item in params["TransactItems"]:
            ((kind, body),) = item.items()
            out.append((f"dynamodb:{TRANSACT_ITEM_ACTION[kind]}", table_arn(body["TableName"])))
        return out
    action = f"{prefix}:{OPERATION_ACTION.get((service, operation), operation)}"
    if service == "sqs":
        return [(action, queue_arn(params["QueueUrl"]))]
    if service == "dynamodb":
        return [(action, table_arn(params["TableName"]))]
    if service == "secretsmanager":
        return [(action, params["SecretId"])]
    if service == "apigatewaymanagementapi":
        return [(action, f"{ws_api}/POST/@connections/{quote(params['ConnectionId'], safe='')}")]
    if service == "bedrock-runtime":
        model = params["modelId"]
        kind = "inference-profile" if model.split(".", 1)[0] in ("us", "eu", "apac") else "foundation-model"
        account = ACCOUNT if kind == "inference-profile" else ""
        return [(action, f"arn:aws:bedrock:{REGION}:{account}:{kind}/{model}")]
    raise AssertionError(f"no IAM mapping for {service}.{operation}")


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def allowed(policy: dict[str, Any], action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if any(_matches(a, action) for a in actions) and any(_matches(r, resource) for r in resources):
            return True
    return False


def denied(policies: list[str], requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    docs = [json.loads(p) for p in policies]
    return sorted({r for r in requests if not any(allowed(doc, *r) for doc in docs)})


ADAPTER_ACTIONS: dict[str, frozenset[str]] = {
    # One row per adapter role: the IAM actions its boto3 calls need (TransactWriteItems counted
    # per item). tests/wiring/test_app_permissions_table.py holds each row to the calls recorded
    # against moto, and each planned role to the rows of the adapters its workload uses.
    "queue.sqs.producer": frozenset({"sqs:SendMessage", "sqs:GetQueueAttributes"}),
    "queue.sqs.consumer": frozenset({"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                     "sqs:SendMessage", "sqs:GetQueueAttributes"}),
    "queue.sqs.dead_letter": frozenset({"sqs:SendMessage"}),
    "state.dynamodb": frozenset({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                 "dynamodb:Query", "dynamodb:ConditionCheckItem"}),
    "settings.secret_arn": frozenset({"secretsmanager:GetSecretValue", "kms:Decrypt"}),
    "lambda.websocket": frozenset({"execute-api:ManageConnections"}),
    "llm.bedrock": frozenset({"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}),
    "worker.ecs_protection": frozenset({"ecs:UpdateTaskProtection", "ecs:GetTaskProtection"}),
}
PLATFORM_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
"""Written by the runtime (Lambda's log agent), not by the app's code."""
