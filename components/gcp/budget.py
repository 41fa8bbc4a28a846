"""`Budget`: a Cloud Billing budget for the project, with actual-spend and forecast threshold rules,
notifying the monitoring channels (email) and the billing account's admins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args


class BudgetArgs(ComponentArgs):
    """A monthly budget. Cost: free."""

    billing_account: str
    """Billing account id (`012345-6789AB-CDEF01`); the budget lives there."""
    project_number: str | pulumi.Output[str]
    """Project the budget counts (`projects/<number>`)."""
    monthly_limit_usd: float = Field(gt=0)
    """Monthly amount in USD (whole dollars; cents are dropped)."""
    alert_thresholds_percent: list[int] = [80, 100]
    """Actual-spend thresholds, percent of the amount."""
    forecast_threshold_percent: int | None = Field(100, ge=1, le=1_000)
    """Forecast threshold, percent. None: no forecast rule."""
    notification_channels: list[str | pulumi.Output[str]] = []
    """Monitoring notification channel ids (at most 5, Cloud Billing's limit)."""
    transforms: Mapping[Literal["budget"], Transform] = {}
    """Escape hatch per child role (`budget`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Budget(pulumi.ComponentResource):
    """Monthly budget with threshold rules."""

    def __init__(self, name: str, args: BudgetArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(BudgetArgs, args, name)
        super().__init__("agent-infra:gcp:Budget", name, None, opts)
        child = ChildFactory(self, args.transforms)
        rules = [{"threshold_percent": t / 100, "spend_basis": "CURRENT_SPEND"} for t in args.alert_thresholds_percent]
        if args.forecast_threshold_percent is not None:
            rules.append({"threshold_percent": args.forecast_threshold_percent / 100, "spend_basis": "FORECASTED_SPEND"})
        self.budget = child(
            "budget", gcp.billing.Budget, name, billing_account=args.billing_account,
            display_name=f"{pulumi.get_project()}-{pulumi.get_stack()}"[:60],
            budget_filter={"projects": [pulumi.Output.concat("projects/", args.project_number)],
                           "calendar_period": "MONTH"},
            amount={"specified_amount": {"currency_code": "USD", "units": str(int(args.monthly_limit_usd))}},
            threshold_rules=rules,
            all_updates_rule={"monitoring_notification_channels": list(args.notification_channels[:5]),
                              "disable_default_iam_recipients": False})
        self.register_outputs({})
