"""The AWS serverless topology: HTTP API -> API function; SQS (+DLQ) -> worker function;
DynamoDB session table with TTL. Short, event-driven runs that cost nothing when idle."""

from __future__ import annotations

from typing import Any

import pulumi

from components.app_env import app_environment
from components.aws.function import AgentFunction
from components.aws.http_api import HttpApi
from components.aws.lambda_code import lambda_code
from components.aws.queue import Queue
from components.aws.session_table import SessionTable
from components.config import DeploymentConfig

API_HANDLER = "agent_app.lambda_handler.handler"
WORKER_HANDLER = "agent_app.lambda_handler.queue_handler"


class ServerlessAgent(pulumi.ComponentResource):
    """Lambda behind API Gateway, an SQS worker with partial-batch failures, DynamoDB state.

    Children stay public (`queue`, `table`, `api_function`, `worker_function`, `http_api`,
    `worker_trigger`) so a program can add grants, alarms or routes without forking this class.
    """

    outputs: dict[str, pulumi.Output[Any]]
    """endpoint, queue_url, dlq_url, state_table, api_function, worker_function."""

    def __init__(self, name: str, config: DeploymentConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:aws:ServerlessAgent", name, None, opts)
        child_opts = pulumi.ResourceOptions(parent=self)
        tags = config.all_tags(pulumi.get_project(), pulumi.get_stack())
        retention = config.observability.log_retention_days

        self.queue = Queue(f"{name}-tasks", {
            "visibility_timeout_seconds": config.visibility_timeout_seconds,
            "max_receive_count": config.queue.max_receive_count,
            "message_retention_seconds": config.queue.message_retention_seconds,
            "tags": tags}, child_opts)
        self.table = SessionTable(f"{name}-sessions", {
            "deletion_protection": config.deletion_protection, "tags": tags}, child_opts)

        env = app_environment(config, queue_backend="sqs", queue_url=self.queue.url, queue_dlq_url=self.queue.dlq_url,
                              state_backend="dynamodb", state_table=self.table.name)
        code = lambda_code(config)
        common: dict[str, Any] = {
            "code": code, "runtime": config.app.runtime, "architecture": config.app.architecture,
            "memory_mb": config.app.memory_mb, "environment": env, "log_retention_days": retention,
            "tracing": config.observability.tracing, "reserved_concurrency": config.scaling.reserved_concurrency,
            "tags": tags}
        self.api_function = AgentFunction(f"{name}-api", {
            **common, "handler": API_HANDLER, "timeout_seconds": config.timeouts.request_seconds,
            "grants": [self.queue.grant_send(), self.table.grant_read_write()]}, child_opts)
        self.worker_function = AgentFunction(f"{name}-worker", {
            **common, "handler": WORKER_HANDLER, "timeout_seconds": config.timeouts.run_seconds,
            "grants": [self.queue.grant_consume(), self.table.grant_read_write()]}, child_opts)

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
            "log_retention_days": retention, "tags": tags}, child_opts)

        self.outputs = {
            "endpoint": self.http_api.endpoint,
            "queue_url": self.queue.url,
            "dlq_url": self.queue.dlq_url,
            "state_table": self.table.name,
            "api_function": self.api_function.name,
            "worker_function": self.worker_function.name,
        }
        self.register_outputs(self.outputs)
