"""SQS task queue with its dead-letter queue (always), encrypted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from .iam import Grant


class QueueArgs(ComponentArgs):
    """Task queue plus dead-letter queue, always encrypted. Cost: per request, about $0 idle."""

    visibility_timeout_seconds: int = Field(1800, ge=0, le=43_200)
    """How long a received task stays hidden. Keep it at least 6x the consumer's timeout
    (AWS's advice for Lambda consumers) so a running task is not delivered twice."""
    max_receive_count: int = Field(3, ge=1, le=1_000)
    """Deliveries before a task moves to the DLQ, where it can be inspected and replayed."""
    message_retention_seconds: int = Field(345_600, ge=60, le=1_209_600)
    """How long an unconsumed task is kept (4 days). The DLQ always keeps 14 days."""
    kms_key_arn: str | pulumi.Output[str] | None = None
    """Customer-managed KMS key. Default: SQS-managed encryption (never unencrypted)."""
    dlq_alarm: bool = True
    """A CloudWatch alarm as soon as one task lands in the DLQ: failed tasks must reach a person.
    The topologies turn it off because their Observability block alarms on the same DLQ."""
    alarm_actions: list[str | pulumi.Output[str]] = []
    """SNS topic ARNs the DLQ alarm notifies (your on-call topic). Empty: the alarm only shows in
    CloudWatch, so pass one in production."""
    tags: dict[str, str] = {}
    """Tags on both queues."""
    transforms: Mapping[Literal["dlq", "dlq_alarm", "queue", "redrive_allow"], Transform] = {}
    """Escape hatch per child role (`dlq`, `dlq_alarm`, `queue`, `redrive_allow`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Queue(pulumi.ComponentResource):
    """An SQS queue and its DLQ. Grant access per verb: `grant_send`, `grant_consume`."""

    url: pulumi.Output[str]
    """Where producers send tasks; reaches the app as AGENT_QUEUE_URL."""
    arn: pulumi.Output[str]
    dlq_url: pulumi.Output[str]
    """Dead-letter queue URL (AGENT_QUEUE_DLQ_URL), for listing and replaying failed tasks."""
    dlq_arn: pulumi.Output[str]
    name: pulumi.Output[str]
    dlq_name: pulumi.Output[str]

    def __init__(self, name: str, args: QueueArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(QueueArgs, args, name)
        super().__init__("agent-infra:aws:Queue", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        encryption: dict[str, Any] = (
            {"kms_master_key_id": args.kms_key_arn} if args.kms_key_arn is not None
            else {"sqs_managed_sse_enabled": True})
        self.dlq = child("dlq", aws.sqs.Queue, f"{name}-dlq", message_retention_seconds=14 * 86_400, **encryption)
        self.queue = child(
            "queue", aws.sqs.Queue, name,
            visibility_timeout_seconds=args.visibility_timeout_seconds,
            message_retention_seconds=args.message_retention_seconds,
            receive_wait_time_seconds=20,  # long polling: fewer empty receives, lower cost
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.dlq.arn,
                                                     "maxReceiveCount": args.max_receive_count}),
            **encryption)
        # Only this queue may use the DLQ as its dead-letter target.
        self.redrive_allow = child(
            "redrive_allow", aws.sqs.RedriveAllowPolicy, f"{name}-dlq-redrive-allow", queue_url=self.dlq.url,
            redrive_allow_policy=pulumi.Output.json_dumps({"redrivePermission": "byQueue",
                                                           "sourceQueueArns": [self.queue.arn]}))
        if args.dlq_alarm:
            self.dlq_alarm = child(
                "dlq_alarm", aws.cloudwatch.MetricAlarm, f"{name}-dlq-not-empty",
                alarm_description=f"Tasks of {name} failed {args.max_receive_count} times and wait in its DLQ",
                namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": self.dlq.name}, statistic="Maximum", period=300, evaluation_periods=1,
                threshold=0, comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
                alarm_actions=list(args.alarm_actions), ok_actions=list(args.alarm_actions))
        self.url, self.arn, self.name = self.queue.url, self.queue.arn, self.queue.name
        self.dlq_url, self.dlq_arn, self.dlq_name = self.dlq.url, self.dlq.arn, self.dlq.name
        self.register_outputs({"url": self.url, "arn": self.arn, "dlq_url": self.dlq_url, "dlq_arn": self.dlq_arn})

    def grant_send(self) -> Grant:
        """Producers: send tasks."""
        return Grant(("sqs:SendMessage", "sqs:GetQueueAttributes"), (self.arn,), "SendTasks")

    def grant_consume(self) -> Grant:
        """Workers: receive, delete, extend visibility of running tasks, and hand a task back (the
        adapter re-sends it with its attempt count: a busy session, a shutdown)."""
        return Grant(("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                      "sqs:GetQueueAttributes", "sqs:SendMessage"), (self.arn,), "ConsumeTasks")

    def grant_dead_letter(self) -> Grant:
        """Workers whose adapter moves a task to the DLQ itself after its last attempt (the
        container worker; the redrive policy stays the backstop for crashed consumers)."""
        return Grant(("sqs:SendMessage",), (self.dlq_arn,), "DeadLetterTasks")

    def grant_redrive(self) -> Grant:
        """Operators/tools: list and replay the DLQ back onto the queue."""
        return Grant(("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                      "sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks"), (self.dlq_arn,), "RedriveDeadLetters")
