"""`Observability`: email notification channels, alert policies on Cloud Run 5xx responses and
Memorystore memory (the queue's backlog lives in Redis, so memory is the backlog signal), and the
retention of the project's `_Default` log bucket."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args


class ObservabilityArgs(ComponentArgs):
    """Alerts and log retention. Cost: alert policies about $0.10/month per condition time series;
    logs $0.50/GiB ingested, retention past 30 days $0.01/GiB-month."""

    project: str
    """Project whose `_Default` log bucket gets `log_retention_days`."""
    emails: list[str] = []
    """Who is notified (one email notification channel each)."""
    services: Mapping[str, str | pulumi.Output[str]] = {}
    """Label (`api`, `worker`) -> Cloud Run service name watched for 5xx responses."""
    redis_instance_ids: Mapping[str, str | pulumi.Output[str]] = {}
    """Label -> Memorystore instance id (`projects/P/locations/R/instances/NAME`) watched for memory."""
    five_xx_per_5_minutes: int = Field(10, ge=1)
    """Alert when a service answers more than this many 5xx responses in 5 minutes."""
    redis_memory_ratio: float = Field(0.8, gt=0, lt=1)
    """Alert when Redis memory use passes this share: queued tasks and state are piling up."""
    log_retention_days: int = Field(30, ge=1, le=3_650)
    """Retention of the `_Default` log bucket (Cloud Logging allows 1-3650 days; 30 is free)."""
    transforms: Mapping[Literal["alert", "channel", "log_bucket"], Transform] = {}
    """Escape hatch per child role (`alert`, `channel`, `log_bucket`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


def _filter(*parts: str | pulumi.Output[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat(*parts)


class Observability(pulumi.ComponentResource):
    """Alerting and log retention for one deployment."""

    channel_ids: list[pulumi.Output[str]]
    """Notification channel ids (the budget notifies them too)."""

    def __init__(self, name: str, args: ObservabilityArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(ObservabilityArgs, args, name)
        super().__init__("agent-infra:gcp:Observability", name, None, opts)
        child = ChildFactory(self, args.transforms)
        self.channels = [
            child("channel", gcp.monitoring.NotificationChannel, f"{name}-email-{index}", type="email",
                  display_name=f"{name} alerts: {email}", labels={"email_address": email})
            for index, email in enumerate(args.emails)]
        self.channel_ids = [channel.id for channel in self.channels]
        self.alerts: list[Any] = []
        for label, service in sorted(args.services.items()):
            self.alerts.append(child(
                "alert", gcp.monitoring.AlertPolicy, f"{name}-{label}-5xx", combiner="OR",
                display_name=f"{name}: {label} 5xx responses", severity="ERROR",
                notification_channels=self.channel_ids,
                conditions=[{"display_name": f"{label} 5xx > {args.five_xx_per_5_minutes} in 5 min",
                             "condition_threshold": {
                                 "filter": _filter('resource.type = "cloud_run_revision" AND '
                                                   'resource.labels.service_name = "', service, '" AND '
                                                   'metric.type = "run.googleapis.com/request_count" AND '
                                                   'metric.labels.response_code_class = "5xx"'),
                                 "aggregations": [{"alignment_period": "300s", "per_series_aligner": "ALIGN_DELTA",
                                                   "cross_series_reducer": "REDUCE_SUM"}],
                                 "comparison": "COMPARISON_GT", "threshold_value": args.five_xx_per_5_minutes,
                                 "duration": "0s"}}],
                documentation={"content": f"The {label} service answers 5xx: check its logs in Cloud Run.",
                               "mime_type": "text/markdown"}))
        for label, instance in sorted(args.redis_instance_ids.items()):
            self.alerts.append(child(
                "alert", gcp.monitoring.AlertPolicy, f"{name}-{label}-memory", combiner="OR",
                display_name=f"{name}: {label} Redis memory", severity="WARNING",
                notification_channels=self.channel_ids,
                conditions=[{"display_name": f"{label} memory > {args.redis_memory_ratio:.0%}",
                             "condition_threshold": {
                                 "filter": _filter('resource.type = "redis_instance" AND '
                                                   'resource.labels.instance_id = "', instance, '" AND '
                                                   'metric.type = "redis.googleapis.com/stats/memory/usage_ratio"'),
                                 "aggregations": [{"alignment_period": "300s", "per_series_aligner": "ALIGN_MEAN"}],
                                 "comparison": "COMPARISON_GT", "threshold_value": args.redis_memory_ratio,
                                 "duration": "300s"}}],
                documentation={"content": "Queued tasks or sessions fill Redis: workers may be stuck or too few.",
                               "mime_type": "text/markdown"}))
        self.log_bucket = child("log_bucket", gcp.logging.ProjectBucketConfig, f"{name}-default-logs",
                                project=args.project, location="global", bucket_id="_Default",
                                retention_days=args.log_retention_days)
        self.register_outputs({"channel_ids": self.channel_ids})
