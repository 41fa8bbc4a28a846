"""WebSocket API: routes, throttled stage with access logs, connections table with TTL, and a
least-privilege ManageConnections grant; and its wiring in the serverless topology (dev stack)."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.aws.websocket_api import WebSocketApi
from agent_infra.components.errors import ConfigError

from agent_infra.offline import run_project
from tests.conftest import REPO_ROOT

INVOKE_ARN = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:ws/invocations"


def test_routes_stage_logs_table_and_permission(plan):
    result = plan.run(lambda: WebSocketApi("chat", {"function_name": "ws", "function_invoke_arn": INVOKE_ARN,
                                                    "throttling_rate_limit": 20, "throttling_burst_limit": 40,
                                                    "log_retention_days": 14}))
    api = result.one("aws:apigatewayv2/api:Api", "chat")
    assert api.inputs["protocolType"] == "WEBSOCKET"
    assert api.inputs["routeSelectionExpression"] == "$request.body.action"
    integration = result.one("aws:apigatewayv2/integration:Integration", "chat-integration")
    assert integration.inputs["integrationType"] == "AWS_PROXY" and integration.inputs["integrationUri"] == INVOKE_ARN
    routes = result.of_type("aws:apigatewayv2/route:Route")
    assert sorted(r.inputs["routeKey"] for r in routes) == ["$connect", "$default", "$disconnect"]
    assert {r.inputs["target"] for r in routes} == {f"integrations/{integration.id}"}
    stage = result.one("aws:apigatewayv2/stage:Stage", "chat-stage")
    assert stage.inputs["name"] == "live" and stage.inputs["autoDeploy"] is True
    assert stage.inputs["defaultRouteSettings"]["throttlingRateLimit"] == 20
    assert stage.inputs["defaultRouteSettings"]["throttlingBurstLimit"] == 40
    logs = result.one("aws:cloudwatch/logGroup:LogGroup", "chat-access-logs")
    assert logs.inputs["retentionInDays"] == 14
    assert stage.inputs["accessLogSettings"]["destinationArn"] == logs.outputs["arn"]
    assert "$context.connectionId" in stage.inputs["accessLogSettings"]["format"]
    table = result.one("aws:dynamodb/table:Table", "chat-connections")
    assert table.inputs["hashKey"] == "pk" and "rangeKey" not in table.inputs
    assert table.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table.inputs["serverSideEncryption"]["enabled"] is True
    permission = result.one("aws:lambda/permission:Permission", "chat-invoke")
    assert permission.inputs["sourceArn"] == f"{api.outputs['executionArn']}/live/*"
    component = result.one("agent-infra:aws:WebSocketApi", "chat")
    assert component.outputs["endpoint"] == f"{api.outputs['apiEndpoint']}/live"
    assert component.outputs["management_endpoint"].startswith("https://")
    assert component.outputs["management_endpoint"].endswith(".amazonaws.com/live")


def test_half_a_function_is_refused(plan):
    with pytest.raises(Exception, match="set both function_name and function_invoke_arn") as info:
        plan.run(lambda: WebSocketApi("chat", {"function_name": "ws"}))
    assert isinstance(info.value, ConfigError) or "ConfigError" in repr(info.value)


def test_serverless_topology_wires_the_websocket_function_with_least_privilege():
    result = run_project(REPO_ROOT, "dev")
    function = next(r for r in result.of_type("aws:lambda/function:Function")
                    if r.inputs.get("handler") == "agent_app.lambda_handler.websocket_handler")
    env = function.inputs["environment"]["variables"]
    connections = next(r for r in result.of_type("aws:dynamodb/table:Table") if r.name.endswith("-ws-connections"))
    assert env["AGENT_WS_CONNECTIONS_TABLE"] == connections.outputs["name"]
    assert env["AGENT_STATE_BACKEND"] == "dynamodb" and env["AGENT_STATE_TABLE"]
    api = next(r for r in result.of_type("aws:apigatewayv2/api:Api") if r.inputs["protocolType"] == "WEBSOCKET")
    policy_name = f"{function.name}-policy"
    policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy", policy_name).inputs["policy"])
    manage = [s for s in policy["Statement"] if "execute-api:ManageConnections" in s["Action"]]
    assert manage == [{"Effect": "Allow", "Action": ["execute-api:ManageConnections"], "Sid": "PostToConnections",
                       "Resource": [f"{api.outputs['executionArn']}/dev/POST/@connections/*"]}]
    assert all("*" not in a for s in policy["Statement"] for a in s["Action"])
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids)), sids  # IAM: MalformedPolicyDocument on a repeated Sid
    tables = {r for s in policy["Statement"] if s["Sid"].endswith("ReadWrite") for r in s["Resource"]}
    assert connections.outputs["arn"] in tables and len(tables) == 2
    routes = [r for r in result.of_type("aws:apigatewayv2/route:Route") if r.inputs["apiId"] == api.outputs["id"]]
    assert sorted(r.inputs["routeKey"] for r in routes) == ["$connect", "$default", "$disconnect"]
