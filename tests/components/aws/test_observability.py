"""Observability block on the offline plan: an encrypted alarm topic and the checklist's alarms, each
notifying the topic, on the resources it is given."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.aws import Observability

from agent_infra.offline import Plan, synthesize

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        Observability("obs", {
            "emails": ["oncall@example.com"],
            "queues": [{"label": "tasks", "queue_name": "q-tasks", "dlq_name": "q-tasks-dlq"}],
            "services": [{"label": "worker", "cluster_name": "c", "service_name": "s-worker"}],
            "load_balancer": {"arn_suffix": "app/agent/1", "target_group_arn_suffix": "targetgroup/api/2"},
            "redis_cluster_ids": ["cache-001"], "db_cluster_ids": ["agent-db"],
            "queue_age_seconds": 1800, "p99_latency_seconds": 30})
    return synthesize(program, stack="prod")


def test_every_alarm_notifies_the_encrypted_topic(plan: Plan) -> None:
    topic = plan.one("aws:sns/topic:Topic", "obs-alarms")
    assert topic.inputs["kmsMasterKeyId"] == plan.one("aws:kms/key:Key", "obs-alarms").outputs["arn"]
    alarms = {a.name: a.inputs for a in plan.of_type(ALARM)}
    assert set(alarms) == {"obs-tasks-age", "obs-tasks-dlq", "obs-worker-cpu", "obs-worker-memory", "obs-5xx-rate",
                           "obs-p99-latency", "obs-redis-0-cpu", "obs-redis-0-memory", "obs-db-0-cpu",
                           "obs-db-0-capacity"}
    arn = topic.outputs["arn"]
    assert all(a["alarmActions"] == [arn] and a["okActions"] == [arn] for a in alarms.values())
    subscription = plan.one("aws:sns/topicSubscription:TopicSubscription", "obs-alarms-email-0").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "oncall@example.com")


def test_queue_alarms_watch_age_and_any_dlq_message(plan: Plan) -> None:
    age = plan.one(ALARM, "obs-tasks-age").inputs
    assert (age["metricName"], age["dimensions"], age["threshold"]) == (
        "ApproximateAgeOfOldestMessage", {"QueueName": "q-tasks"}, 1800)
    dlq = plan.one(ALARM, "obs-tasks-dlq").inputs
    assert (dlq["metricName"], dlq["dimensions"], dlq["threshold"], dlq["comparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible", {"QueueName": "q-tasks-dlq"}, 0, "GreaterThanThreshold")


def test_load_balancer_alarms_on_5xx_rate_and_p99(plan: Plan) -> None:
    rate = plan.one(ALARM, "obs-5xx-rate").inputs
    assert rate["threshold"] == 5
    queries = {q["id"]: q for q in rate["metricQueries"]}
    assert queries["rate"]["returnData"] is True and "elb5xx" in queries["rate"]["expression"]
    assert queries["target5xx"]["metric"]["metricName"] == "HTTPCode_Target_5XX_Count"
    p99 = plan.one(ALARM, "obs-p99-latency").inputs
    assert (p99["extendedStatistic"], p99["threshold"]) == ("p99", 30)
    assert p99["dimensions"] == {"LoadBalancer": "app/agent/1", "TargetGroup": "targetgroup/api/2"}


def test_topic_accepts_only_aws_publishers_over_tls(plan: Plan) -> None:
    policy = json.loads(plan.one("aws:sns/topicPolicy:TopicPolicy", "obs-alarms-policy").inputs["policy"])
    publishers, tls = policy["Statement"]
    assert "budgets.amazonaws.com" in publishers["Principal"]["Service"]
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dashboard_shows_every_watched_resource(plan: Plan) -> None:
    body = json.loads(plan.one("aws:cloudwatch/dashboard:Dashboard", "obs-dashboard").inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == ["Queue tasks", "Service worker", "Load balancer", "Redis 0", "Database 0"]
