"""API Gateway HTTP API in front of a Lambda function: throttled stage, access logs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args

ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod", "routeKey": "$context.routeKey", "status": "$context.status",
    "protocol": "$context.protocol", "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency", "integrationError": "$context.integrationErrorMessage",
}, separators=(",", ":"))


class HttpApiArgs(ComponentArgs):
    """HTTP API (payload v2) proxying to one function. Cost: $1.00 per million requests."""

    function_arn: str | pulumi.Output[str]
    """The Lambda function behind every route."""
    function_name: str | pulumi.Output[str]
    """Its name, for the invoke permission."""
    routes: Sequence[str] = ("$default",)
    """Route keys (`POST /webhook`); `$default` sends everything to the function, which routes itself."""
    throttling_rate_limit: int = Field(50, ge=1, le=100_000)
    """Steady-state requests per second for the stage."""
    throttling_burst_limit: int = Field(100, ge=1, le=100_000)
    """Burst capacity of the stage."""
    timeout_seconds: int = Field(29, ge=1, le=30)
    """Integration timeout; HTTP APIs allow at most 30 s. Long runs go through the webhook."""
    log_retention_days: int = 30
    """Retention of the access-log group."""
    log_kms_key_arn: str | pulumi.Output[str] | None = None
    """Customer-managed key for the access-log group (its policy must admit CloudWatch Logs)."""
    cors_origins: Sequence[str] = ()
    """Allowed browser origins. Empty: no CORS headers (server-to-server use)."""
    tags: dict[str, str] = {}
    transforms: Mapping[Literal["access_logs", "api", "integration", "permission", "route", "stage"], Transform] = {}
    """Escape hatch per child role (`access_logs`, `api`, `integration`, `permission`, `route`, `stage`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class HttpApi(pulumi.ComponentResource):
    """The public HTTPS entry point of a serverless agent."""

    endpoint: pulumi.Output[str]
    """Base URL (`https://<id>.execute-api.<region>.amazonaws.com`)."""
    api_id: pulumi.Output[str]
    stage_arn: pulumi.Output[str]

    def __init__(self, name: str, args: HttpApiArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(HttpApiArgs, args, name)
        super().__init__("agent-infra:aws:HttpApi", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        cors = ({"allow_origins": list(args.cors_origins), "allow_methods": ["GET", "POST", "OPTIONS"],
                 "allow_headers": ["authorization", "content-type", "idempotency-key"], "max_age": 600}
                if args.cors_origins else None)
        self.api = child("api", aws.apigatewayv2.Api, name, protocol_type="HTTP", cors_configuration=cors,
                         description="Agent API (HTTP API, payload v2)")
        self.access_logs = child("access_logs", aws.cloudwatch.LogGroup, f"{name}-access-logs",
                                 retention_in_days=args.log_retention_days, kms_key_id=args.log_kms_key_arn)
        self.integration = child("integration", aws.apigatewayv2.Integration, f"{name}-integration",
                                 api_id=self.api.id, integration_type="AWS_PROXY",
                                 integration_uri=args.function_arn, integration_method="POST",
                                 payload_format_version="2.0", timeout_milliseconds=args.timeout_seconds * 1000)
        self.routes = [
            child("route", aws.apigatewayv2.Route, f"{name}-route-{_route_slug(key)}", api_id=self.api.id,
                  route_key=key, target=self.integration.id.apply(lambda i: f"integrations/{i}"))
            for key in args.routes]
        self.stage = child(
            "stage", aws.apigatewayv2.Stage, f"{name}-stage", api_id=self.api.id, name="$default",
            auto_deploy=True,
            default_route_settings={"throttling_rate_limit": args.throttling_rate_limit,
                                    "throttling_burst_limit": args.throttling_burst_limit,
                                    "detailed_metrics_enabled": True},
            access_log_settings={"destination_arn": self.access_logs.arn, "format": ACCESS_LOG_FORMAT})
        self.permission = child(
            "permission", aws.lambda_.Permission, f"{name}-invoke", action="lambda:InvokeFunction",
            function=args.function_name, principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*"))
        self.endpoint, self.api_id, self.stage_arn = self.api.api_endpoint, self.api.id, self.stage.arn
        self.register_outputs({"endpoint": self.endpoint, "api_id": self.api_id})


def _route_slug(route_key: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in route_key.lower()).strip("-")
    return slug or "default"
