"""Budget block on the offline plan: actual + forecast notifications at the configured thresholds to
emails and the topic, filtered by the stack tag; the anomaly monitor on the same tag."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.aws import Budget
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

BUDGET = "aws:budgets/budget:Budget"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"
EMAILS = ["platform@example.com", "finance@example.com"]


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        Budget("team", {"monthly_limit_usd": 1500, "alert_thresholds_percent": [100, 50, 80],
                        "forecast_threshold_percent": 90, "emails": EMAILS, "topic_arn": TOPIC,
                        "cost_filter_tags": {"stack": "prod"}})
        Budget("mail-only", {"emails": ["me@example.com"], "forecast_threshold_percent": None})
    return synthesize(program, stack="prod")


def test_actual_and_forecast_notifications_at_configured_thresholds(plan: Plan) -> None:
    budget = plan.one(BUDGET, "team").inputs
    assert (budget["limitAmount"], budget["limitUnit"], budget["timeUnit"]) == ("1500.00", "USD", "MONTHLY")
    kinds = [(n["notificationType"], n["threshold"], n["thresholdType"]) for n in budget["notifications"]]
    assert kinds == [("ACTUAL", 50, "PERCENTAGE"), ("ACTUAL", 80, "PERCENTAGE"), ("ACTUAL", 100, "PERCENTAGE"),
                     ("FORECASTED", 90, "PERCENTAGE")]
    for notification in budget["notifications"]:
        assert notification["subscriberEmailAddresses"] == EMAILS
        assert notification["subscriberSnsTopicArns"] == [TOPIC]
    mail_only = plan.one(BUDGET, "mail-only").inputs
    assert [(n["notificationType"], n["threshold"]) for n in mail_only["notifications"]] == [
        ("ACTUAL", 80), ("ACTUAL", 100)]
    assert "subscriberSnsTopicArns" not in mail_only["notifications"][0]


def test_filtered_by_the_stack_tag(plan: Plan) -> None:
    assert plan.one(BUDGET, "team").inputs["costFilters"] == [{"name": "TagKeyValue", "values": ["user:stack$prod"]}]
    assert "costFilters" not in plan.one(BUDGET, "mail-only").inputs
    monitor = plan.one("aws:costexplorer/anomalyMonitor:AnomalyMonitor", "team-anomaly").inputs
    assert monitor["monitorType"] == "CUSTOM"
    assert json.loads(monitor["monitorSpecification"]) == {
        "Tags": {"Key": "stack", "Values": ["prod"], "MatchOptions": ["EQUALS"]}}


def test_anomaly_alerts_immediate_to_the_topic_daily_to_email(plan: Plan) -> None:
    team = plan.one("aws:costexplorer/anomalySubscription:AnomalySubscription", "team-anomaly-alerts").inputs
    assert (team["frequency"], team["subscribers"]) == ("IMMEDIATE", [{"type": "SNS", "address": TOPIC}])
    mail = plan.one("aws:costexplorer/anomalySubscription:AnomalySubscription", "mail-only-anomaly-alerts").inputs
    assert (mail["frequency"], mail["subscribers"]) == ("DAILY", [{"type": "EMAIL", "address": "me@example.com"}])


def test_a_budget_nobody_hears_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"emails or topic_arn: a budget nobody is told about protects nothing"):
        Budget("team", {"monthly_limit_usd": 10})
