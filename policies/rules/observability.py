"""Logs are kept for a bounded time, entry points write access logs, dead letters raise alarms."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..engine import Context, Finding, Resource, Rule, is_unknown
from ._common import (
    HTTP_STAGE,
    LOAD_BALANCERS,
    LOG_GROUP,
    METRIC_ALARM,
    SQS_QUEUE,
    as_dict,
    fmt,
    number,
    of_type,
    present,
    references,
    resource_rule,
    stack_rule,
)

RULES: list[Rule] = []


@resource_rule(
    RULES, name="log-group-retention", area="observability", level="mandatory", severity="medium",
    types={LOG_GROUP},
    description="Checks whether every CloudWatch log group has a retention period within bounds.",
    remediation="Set retentionInDays on the log group (agent-infra: observability.log_retention_days); "
                "0 or unset keeps logs, and their cost, forever.",
    config={"minDays": {"type": "number", "default": 1, "description": "Shortest acceptable retention."},
            "maxDays": {"type": "number", "default": 3653, "description": "Longest acceptable retention."}},
)
def log_group_retention(group: Resource, ctx: Context) -> Iterator[str]:
    raw = group.get("retentionInDays")
    if is_unknown(raw):
        return
    days = number(raw)
    if not days:
        yield "retentionInDays is not set, so logs never expire"
    elif not ctx["minDays"] <= days <= ctx["maxDays"]:
        yield f"retentionInDays is {fmt(days)}, outside {fmt(ctx['minDays'])}-{fmt(ctx['maxDays'])}"


@resource_rule(
    RULES, name="api-gateway-access-logs", area="observability", level="mandatory", severity="medium",
    types={HTTP_STAGE},
    description="Checks whether every API Gateway stage writes access logs.",
    remediation="Set accessLogSettings {destinationArn: <log group ARN>, format: <JSON with $context.requestId, "
                "status, ip>} on the stage.",
)
def api_gateway_access_logs(stage: Resource, ctx: Context) -> Iterator[str]:
    settings = stage.get("accessLogSettings")
    if is_unknown(settings):
        return
    if not as_dict(settings).get("destinationArn"):
        yield "accessLogSettings.destinationArn is not set"
    elif not as_dict(settings).get("format"):
        yield "accessLogSettings.format is not set"


@resource_rule(
    RULES, name="load-balancer-access-logs", area="observability", level="mandatory", severity="medium",
    types=LOAD_BALANCERS,
    description="Checks whether every application load balancer writes access logs to S3.",
    remediation="Set accessLogs {enabled: true, bucket: <bucket with the ELB log-delivery policy>, prefix} on "
                "the load balancer.",
)
def load_balancer_access_logs(lb: Resource, ctx: Context) -> Iterator[str]:
    if lb.get("loadBalancerType", "application") != "application":
        return
    logs = lb.get("accessLogs")
    if is_unknown(logs):
        return
    if as_dict(logs).get("enabled") is not True or not as_dict(logs).get("bucket"):
        yield "accessLogs are not enabled"


def dead_letter_queues(resources: Sequence[Resource]) -> list[Resource]:
    """Queues that another queue's inline redrive policy points at.

    The link is the dependency the redrive policy creates (`deadLetterTargetArn: dlq.arn`): a
    queue's inputs reference no other queue. A standalone `aws.sqs.RedrivePolicy` depends on both
    its source and its DLQ, so it cannot name the DLQ by itself and is not used here.
    """
    queues = of_type(resources, SQS_QUEUE)
    targets: list[Resource] = []
    for source in queues:
        if not present(source.get("redrivePolicy")):
            continue
        for queue in queues:
            if queue is not source and queue.urn in source.dependencies and queue not in targets:
                targets.append(queue)
    return targets


@stack_rule(
    RULES, name="dlq-alarm", area="observability", level="mandatory", severity="high",
    description="Checks whether every dead-letter queue has a CloudWatch alarm on its message count.",
    remediation="Add an aws.cloudwatch.MetricAlarm on AWS/SQS ApproximateNumberOfMessagesVisible with "
                "dimensions {QueueName: <dlq name>}, threshold 0, and an SNS action that reaches a person.",
)
def dlq_alarm(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    alarms = [a for a in of_type(resources, METRIC_ALARM)
              if a.get("namespace") in ("AWS/SQS", None) or a.get("metricQueries") is not None]
    for dlq in dead_letter_queues(resources):
        if not any(references(a, dlq, as_dict(a.get("dimensions")).get("QueueName"), str(a.get("metricQueries")))
                   for a in alarms):
            yield Finding("dead-letter queue has no CloudWatch alarm; failed tasks pile up unnoticed", urn=dlq.urn)
