"""API Gateway WebSocket API in front of a Lambda function: streaming agent steps without a server.

Routes `$connect` (the function checks the API key), `$disconnect` and `$default` (a user
message) go to one function, `agent_app.lambda_handler.websocket_handler`, which pushes each chunk
back through the stage's management endpoint (`PostToConnection`). Open connections are kept in
a DynamoDB table with TTL (API Gateway closes a connection after 2 hours at most).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ..errors import ConfigError
from .iam import Grant
from .session_table import SessionTable

ROUTES = ("$connect", "$disconnect", "$default")
"""The routes, all to the one function; the function dispatches on `requestContext.routeKey`."""

ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "requestTime": "$context.requestTime",
    "eventType": "$context.eventType", "routeKey": "$context.routeKey", "status": "$context.status",
    "connectionId": "$context.connectionId", "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}, separators=(",", ":"))


class WebSocketApiArgs(ComponentArgs):
    """WebSocket API + stage + connections table. Cost: $1.00 per million messages, $0.25 per million
    connection-minutes; the table is on-demand (about $0 idle)."""

    function_name: str | pulumi.Output[str] | None = None
    """The function behind every route, for the invoke permission. None: call `route_to(...)` once the
    function exists (its role needs this API's ARN first, see `grant_manage_connections`)."""
    function_invoke_arn: str | pulumi.Output[str] | None = None
    """Its invoke ARN (WebSocket integrations take the invoke ARN, not the function ARN)."""
    stage_name: str = "live"
    """Stage name; part of the endpoint (`wss://<id>.execute-api.<region>.amazonaws.com/<stage>`)."""
    throttling_rate_limit: int = Field(50, ge=1, le=100_000)
    """Steady-state messages per second for the stage."""
    throttling_burst_limit: int = Field(100, ge=1, le=100_000)
    """Burst capacity of the stage."""
    log_retention_days: int = 30
    """Retention of the access-log group."""
    log_kms_key_arn: str | pulumi.Output[str] | None = None
    """Customer-managed key for the access-log group (its policy must admit CloudWatch Logs)."""
    deletion_protection: bool = False
    """Protect the connections table from deletion (its content is short-lived; off by default)."""
    tags: dict[str, str] = {}
    transforms: Mapping[Literal["access_logs", "api", "integration", "permission", "route", "stage"], Transform] = {}
    """Escape hatch per child role (`access_logs`, `api`, `integration`, `permission`, `route`, `stage`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class WebSocketApi(pulumi.ComponentResource):
    """The WebSocket entry point of a serverless agent. `grant_manage_connections` lets exactly this
    API's stage be posted to; `connections.grant_read_write()` the table."""

    endpoint: pulumi.Output[str]
    """`wss://<id>.execute-api.<region>.amazonaws.com/<stage>`: what clients connect to."""
    management_endpoint: pulumi.Output[str]
    """`https://<id>.execute-api.<region>.amazonaws.com/<stage>`: where the function posts chunks."""
    connections_table: pulumi.Output[str]
    """Table of open connections; reaches the function as AGENT_WS_CONNECTIONS_TABLE."""

    def __init__(self, name: str, args: WebSocketApiArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(WebSocketApiArgs, args, name)
        super().__init__("agent-infra:aws:WebSocketApi", name, None, opts)
        self._args, self._component_name = args, name
        self._child = child = ChildFactory(self, args.transforms, args.tags)
        self.api = child("api", aws.apigatewayv2.Api, name, protocol_type="WEBSOCKET",
                         route_selection_expression="$request.body.action",
                         description="Agent WebSocket API: $connect, $disconnect, $default")
        self.access_logs = child("access_logs", aws.cloudwatch.LogGroup, f"{name}-access-logs",
                                 retention_in_days=args.log_retention_days, kms_key_id=args.log_kms_key_arn)
        self.stage = child(
            "stage", aws.apigatewayv2.Stage, f"{name}-stage", api_id=self.api.id, name=args.stage_name,
            auto_deploy=True,
            default_route_settings={"throttling_rate_limit": args.throttling_rate_limit,
                                    "throttling_burst_limit": args.throttling_burst_limit,
                                    "detailed_metrics_enabled": True},
            access_log_settings={"destination_arn": self.access_logs.arn, "format": ACCESS_LOG_FORMAT})
        self.connections = SessionTable(f"{name}-connections", {
            "range_key": None, "deletion_protection": args.deletion_protection, "tags": args.tags}, pulumi.ResourceOptions(parent=self))
        self.endpoint = pulumi.Output.concat(self.api.api_endpoint, "/", args.stage_name)
        self.management_endpoint = self.api.api_endpoint.apply(
            lambda e: e.replace("wss://", "https://", 1) + f"/{args.stage_name}")
        self.connections_table = self.connections.name
        self.routes: list[pulumi.Resource] = []
        if (args.function_name is None) != (args.function_invoke_arn is None):
            raise ConfigError(f"{name}: set both function_name and function_invoke_arn, or neither and call route_to")
        if args.function_name is not None and args.function_invoke_arn is not None:
            self.route_to(args.function_name, args.function_invoke_arn)
        self.register_outputs({"endpoint": self.endpoint, "management_endpoint": self.management_endpoint,
                               "connections_table": self.connections_table})

    def route_to(self, function_name: str | pulumi.Output[str], function_invoke_arn: str | pulumi.Output[str]) -> None:
        """Send every route to the function and let API Gateway invoke it (this stage only)."""
        name, child = self._component_name, self._child
        self.integration = child("integration", aws.apigatewayv2.Integration, f"{name}-integration",
                                 api_id=self.api.id, integration_type="AWS_PROXY",
                                 integration_uri=function_invoke_arn, integration_method="POST",
                                 content_handling_strategy="CONVERT_TO_TEXT")
        target = self.integration.id.apply(lambda i: f"integrations/{i}")
        self.routes = [
            child("route", aws.apigatewayv2.Route, f"{name}-route-{key.strip('$')}", api_id=self.api.id,
                  route_key=key, target=target, authorization_type="NONE")
            for key in ROUTES]
        self.permission = child(
            "permission", aws.lambda_.Permission, f"{name}-invoke", action="lambda:InvokeFunction",
            function=function_name, principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/{self._args.stage_name}/*"))

    def grant_manage_connections(self) -> Grant:
        """`execute-api:ManageConnections` to post to this API's stage only (no other API, no wildcard)."""
        return Grant(("execute-api:ManageConnections",),
                     (self.api.execution_arn.apply(lambda arn: f"{arn}/{self._args.stage_name}/POST/@connections/*"),),
                     "PostToConnections")
