"""Log retention, access logs, DLQ alarms."""

from __future__ import annotations

from agent_infra.policies.engine import UNKNOWN
from policy_helpers import dumps, messages, res

LOGS = "aws:cloudwatch/logGroup:LogGroup"
QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def test_log_group_retention() -> None:
    assert messages("log-group-retention", res(LOGS, {"retentionInDays": 14}), res(LOGS, {"retentionInDays": UNKNOWN})) == []
    assert messages("log-group-retention", res(LOGS, {}, name="forever"),
                    res(LOGS, {"retentionInDays": 3653}, name="long"), config={"maxDays": 365}) == [
        "forever: retentionInDays is not set, so logs never expire", "long: retentionInDays is 3653, outside 1-365"]


def test_api_gateway_access_logs() -> None:
    stage = "aws:apigatewayv2/stage:Stage"
    ok = res(stage, {"accessLogSettings": {"destinationArn": "arn:aws:logs:x", "format": "{}"}})
    assert messages("api-gateway-access-logs", ok) == []
    assert messages("api-gateway-access-logs", res(stage, {}, name="s")) == [
        "s: accessLogSettings.destinationArn is not set"]


def test_load_balancer_access_logs() -> None:
    lb = "aws:lb/loadBalancer:LoadBalancer"
    ok = res(lb, {"accessLogs": {"enabled": True, "bucket": "logs"}})
    network = res(lb, {"loadBalancerType": "network"})
    assert messages("load-balancer-access-logs", ok, network) == []
    assert messages("load-balancer-access-logs", res(lb, {}, name="alb")) == ["alb: accessLogs are not enabled"]


def _queues() -> tuple[object, object]:
    dlq = res(QUEUE, {"sqsManagedSseEnabled": True}, name="tasks-dlq")
    queue = res(QUEUE, {"redrivePolicy": dumps({"deadLetterTargetArn": "arn:aws:sqs:r:1:tasks-dlq"})}, name="tasks",
                deps=(dlq,))
    return dlq, queue


def test_dlq_alarm() -> None:
    dlq, queue = _queues()
    alarm = res(ALARM, {"namespace": "AWS/SQS", "dimensions": {"QueueName": UNKNOWN}}, name="dlq-alarm", deps=(dlq,))
    assert messages("dlq-alarm", dlq, queue, alarm) == []  # type: ignore[arg-type]
    assert messages("dlq-alarm", dlq, queue) == [  # type: ignore[arg-type]
        "tasks-dlq: dead-letter queue has no CloudWatch alarm; failed tasks pile up unnoticed"]
