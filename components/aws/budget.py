"""A monthly AWS Budget with actual and forecasted alerts, plus Cost Anomaly Detection."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args


class BudgetArgs(ComponentArgs):
    """Monthly cost budget filtered by the stack's cost-allocation tags, and an anomaly monitor.

    Cost: the first two budgets per account are free, then $0.02/day; Cost Anomaly Detection is free.
    The tag filter only matches once the tag keys are activated as cost-allocation tags
    (Billing console -> Cost allocation tags), which AWS allows only for keys it has seen.
    """

    monthly_limit_usd: float = Field(100, gt=0)
    """Monthly spend limit in USD."""
    alert_thresholds_percent: list[int] = [80, 100]
    """Actual-spend notifications, percent of the limit."""
    forecast_threshold_percent: int | None = Field(100, ge=1, le=1_000)
    """Notify when forecasted month-end spend crosses this percent. None: no forecast alert."""
    emails: list[str] = []
    """Email subscribers of every notification (at most 10 per notification, AWS's limit)."""
    topic_arn: str | pulumi.Output[str] | None = None
    """SNS topic that also receives budget notifications and (immediately) anomaly alerts."""
    cost_filter_tags: dict[str, str] = {}
    """Cost-allocation tags the budget and anomaly monitor are filtered on (`stack: prod`).
    Empty: the whole account."""
    anomaly_threshold_usd: float = Field(20, gt=0)
    """Alert on an anomaly whose total impact is at least this many USD."""
    anomaly_detection: bool = True
    """Create the Cost Anomaly Detection monitor and subscription."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["anomaly_monitor", "anomaly_subscription", "budget"], Transform] = {}
    """Escape hatch per child role (`anomaly_monitor`, `anomaly_subscription`, `budget`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @field_validator("alert_thresholds_percent")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        if not value or not all(1 <= t <= 1_000 for t in value):
            raise ValueError(f"needs one or more percents between 1 and 1000, got {value}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _someone_listens(self) -> BudgetArgs:
        if not self.emails and self.topic_arn is None:
            raise ValueError("emails or topic_arn: a budget nobody is told about protects nothing; "
                             "set budget.emails or pass the alarm topic")
        if len(self.emails) > 10:
            raise ValueError(f"emails: AWS Budgets allows 10 email subscribers, got {len(self.emails)}; "
                             "subscribe the rest to the alarm topic")
        return self


class Budget(pulumi.ComponentResource):
    """`budget` (aws.budgets.Budget) and, unless disabled, `anomaly_monitor` + `anomaly_subscription`."""

    budget_name: pulumi.Output[str]

    def __init__(self, name: str, args: BudgetArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(BudgetArgs, args, name)
        super().__init__("agent-infra:aws:Budget", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        topics = [args.topic_arn] if args.topic_arn is not None else None
        emails = list(args.emails) or None
        notifications: list[dict[str, Any]] = [
            {"comparison_operator": "GREATER_THAN", "threshold": t, "threshold_type": "PERCENTAGE",
             "notification_type": "ACTUAL", "subscriber_email_addresses": emails, "subscriber_sns_topic_arns": topics}
            for t in args.alert_thresholds_percent]
        if args.forecast_threshold_percent is not None:
            notifications.append({
                "comparison_operator": "GREATER_THAN", "threshold": args.forecast_threshold_percent,
                "threshold_type": "PERCENTAGE", "notification_type": "FORECASTED",
                "subscriber_email_addresses": emails, "subscriber_sns_topic_arns": topics})
        cost_filters = None
        if args.cost_filter_tags:
            cost_filters = [{"name": "TagKeyValue",
                             "values": [f"user:{k}${v}" for k, v in sorted(args.cost_filter_tags.items())]}]
        self.budget = child("budget", aws.budgets.Budget, name, name=physical_name(name, 100),
                            budget_type="COST", time_unit="MONTHLY", limit_unit="USD",
                            limit_amount=f"{args.monthly_limit_usd:.2f}", cost_filters=cost_filters,
                            notifications=notifications)
        self.budget_name = self.budget.name

        if args.anomaly_detection:
            if args.cost_filter_tags:
                key, value = sorted(args.cost_filter_tags.items())[0]
                spec = json.dumps({"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}})
                monitor_args: dict[str, Any] = {"monitor_type": "CUSTOM", "monitor_specification": spec}
            else:
                monitor_args = {"monitor_type": "DIMENSIONAL", "monitor_dimension": "SERVICE"}
            self.anomaly_monitor = child("anomaly_monitor", aws.costexplorer.AnomalyMonitor, f"{name}-anomaly",
                                         name=physical_name(f"{name}-anomaly", 1024), **monitor_args)
            # SNS subscribers get each anomaly immediately; email-only subscriptions must be daily.
            if topics:
                subscribers = [{"type": "SNS", "address": args.topic_arn}]
                frequency = "IMMEDIATE"
            else:
                subscribers = [{"type": "EMAIL", "address": e} for e in args.emails]
                frequency = "DAILY"
            self.anomaly_subscription = child(
                "anomaly_subscription", aws.costexplorer.AnomalySubscription, f"{name}-anomaly-alerts",
                name=physical_name(f"{name}-anomaly-alerts", 1024), frequency=frequency,
                monitor_arn_lists=[self.anomaly_monitor.arn], subscribers=subscribers,
                threshold_expression={"dimension": {"key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                                                    "match_options": ["GREATER_THAN_OR_EQUAL"],
                                                    "values": [f"{args.anomaly_threshold_usd:g}"]}})
        self.register_outputs({"budget_name": self.budget_name})
