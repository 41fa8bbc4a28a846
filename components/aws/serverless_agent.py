"""The AWS serverless topology: HTTP API -> API function; SQS (+DLQ) -> worker function;
DynamoDB session table with TTL. Short, event-driven runs that cost nothing when idle."""

from __future__ import annotations

from typing import Any

import pulumi

from ..app_env import app_environment
from ..config import DeploymentConfig
from .bedrock import invoke_model_grant
from .budget import Budget
from .container_agent import app_secrets
from .function import AgentFunction
from .http_api import HttpApi
from .lambda_code import lambda_code
from .observability import Observability
from .queue import Queue
from .region import primary_region
from .secrets import Secrets
from .session_table import SessionTable
from .websocket_api import WebSocketApi

API_HANDLER = "agent_app.lambda_handler.handler"
WORKER_HANDLER = "agent_app.lambda_handler.queue_handler"
WEBSOCKET_HANDLER = "agent_app.lambda_handler.websocket_handler"


class ServerlessAgent(pulumi.ComponentResource):
    """Lambda behind API Gateway, an SQS worker with partial-batch failures, DynamoDB state.

    Children stay public (`queue`, `table`, `api_function`, `worker_function`, `http_api`,
    `worker_trigger`) so a program can add grants, alarms or routes without forking this class.
    """

    outputs: dict[str, pulumi.Output[Any]]
    """endpoint, queue_url, dlq_url, state_table, api_function, worker_function."""

    def __init__(self, name: str, config: DeploymentConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        config, opts = primary_region(name, config, opts)
        super().__init__("agent-infra:aws:ServerlessAgent", name, None, opts)
        child_opts = pulumi.ResourceOptions(parent=self)
        tags = config.all_tags(pulumi.get_project(), pulumi.get_stack())
        retention = config.observability.log_retention_days

        self.queue = Queue(f"{name}-tasks", {
            "dlq_alarm": False,  # Observability alarms on this DLQ, to the stack's alert topic
            "visibility_timeout_seconds": config.visibility_timeout_seconds,
            "max_receive_count": config.queue.max_receive_count,
            "message_retention_seconds": config.queue.message_retention_seconds,
            "tags": tags}, child_opts)
        self.table = SessionTable(f"{name}-sessions", {
            "deletion_protection": config.deletion_protection, "tags": tags}, child_opts)

        env = app_environment(config, queue_backend="sqs", queue_url=self.queue.url, queue_dlq_url=self.queue.dlq_url,
                              state_backend="dynamodb", state_table=self.table.name)
        # Secrets reach Lambda as <NAME>_SECRET_ARN (resolved by agent_app.settings), never as values.
        secret_values, secret_arns = app_secrets(config)
        self.secrets = Secrets(f"{name}-secrets", {
            "values": secret_values, "existing_arns": secret_arns,
            "recovery_window_days": 7 if config.is_production else 0, "tags": tags}, child_opts)
        env.update({f"{key}_SECRET_ARN": arn for key, arn in self.secrets.arns.items()})
        code = lambda_code(config)
        model_grants = ([invoke_model_grant(str(config.app.llm_model), config.regions.primary)]
                        if config.app.llm_provider == "bedrock" else [])
        common: dict[str, Any] = {
            "code": code, "runtime": config.app.runtime, "architecture": config.app.architecture,
            "memory_mb": config.app.memory_mb, "environment": env, "log_retention_days": retention,
            "tracing": config.observability.tracing, "reserved_concurrency": config.scaling.reserved_concurrency,
            # The stack key (created with the first secret) encrypts the environment and the logs.
            "kms_key_arn": self.secrets.kms_key_arn, "tags": tags}
        self.api_function = AgentFunction(f"{name}-api", {
            **common, "handler": API_HANDLER, "timeout_seconds": config.timeouts.request_seconds,
            "grants": [self.queue.grant_send(), self.table.grant_read_write(), *self.secrets.grant_read(),
                       *model_grants]}, child_opts)
        self.worker_function = AgentFunction(f"{name}-worker", {
            **common, "handler": WORKER_HANDLER, "timeout_seconds": config.timeouts.run_seconds,
            "grants": [self.queue.grant_consume(), self.table.grant_read_write(), *self.secrets.grant_read(),
                       *model_grants]},
            child_opts)

        import pulumi_aws as aws

        # One bad message must not redeliver the batch: the handler reports batchItemFailures.
        self.worker_trigger = aws.lambda_.EventSourceMapping(
            f"{name}-worker-trigger",
            event_source_arn=self.queue.arn,
            function_name=self.worker_function.arn,
            batch_size=min(10, config.scaling.jobs_per_worker),
            maximum_batching_window_in_seconds=1,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config={"maximum_concurrency": max(2, config.scaling.worker_max_instances)},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.worker_function]))

        self.http_api = HttpApi(f"{name}-http", {
            "function_arn": self.api_function.arn, "function_name": self.api_function.name,
            "throttling_rate_limit": config.rate_limits.requests_per_second,
            "throttling_burst_limit": config.rate_limits.burst,
            "timeout_seconds": min(30, config.timeouts.request_seconds),
            "log_retention_days": retention, "log_kms_key_arn": self.secrets.kms_key_arn, "tags": tags}, child_opts)
        # WebSocket: the API first (the function's role names its ARN), then the function, then the routes.
        self.websocket_api = WebSocketApi(f"{name}-ws", {
            "stage_name": config.environment,  # the URL says which environment it is (`/dev`, `/prod`)
            "throttling_rate_limit": config.rate_limits.requests_per_second,
            "throttling_burst_limit": config.rate_limits.burst, "log_retention_days": retention,
            "log_kms_key_arn": self.secrets.kms_key_arn, "tags": tags}, child_opts)
        self.websocket_function = AgentFunction(f"{name}-ws-handler", {
            **common, "handler": WEBSOCKET_HANDLER, "timeout_seconds": config.timeouts.run_seconds,
            "environment": {**env, "AGENT_WS_CONNECTIONS_TABLE": self.websocket_api.connections_table},
            "grants": [self.table.grant_read_write(), self.websocket_api.connections.grant_read_write(),
                       self.websocket_api.grant_manage_connections(), *self.secrets.grant_read(), *model_grants]},
            child_opts)
        self.websocket_api.route_to(self.websocket_function.name, self.websocket_function.invoke_arn)

        self.observability = Observability(f"{name}-observability", {
            "emails": sorted(set(config.budget.emails) | set(config.observability.alarm_emails)),
            "queues": [{"label": "tasks", "queue_name": self.queue.name, "dlq_name": self.queue.dlq_name}],
            "function_names": [self.api_function.name, self.worker_function.name, self.websocket_function.name],
            "queue_age_seconds": max(300, 2 * config.timeouts.run_seconds), "tags": tags}, child_opts)
        self.secrets.notify_age(self.observability.topic_arn)
        self.budget = Budget(f"{name}-budget", {
            "monthly_limit_usd": config.budget.monthly_limit_usd,
            "alert_thresholds_percent": config.budget.alert_thresholds_percent,
            "forecast_threshold_percent": config.budget.forecast_threshold_percent,
            "emails": config.budget.emails, "topic_arn": self.observability.topic_arn,
            "cost_filter_tags": {"stack": pulumi.get_stack()}, "tags": tags}, child_opts)

        self.outputs = {
            "endpoint": self.http_api.endpoint,
            "queue_url": self.queue.url,
            "dlq_url": self.queue.dlq_url,
            "state_table": self.table.name,
            "api_function": self.api_function.name,
            "worker_function": self.worker_function.name,
            "websocket_endpoint": self.websocket_api.endpoint,
            "alarm_topic_arn": self.observability.topic_arn,
        }
        if self.observability.dashboard_url is not None:
            self.outputs["dashboard_url"] = self.observability.dashboard_url
        self.register_outputs(self.outputs)
