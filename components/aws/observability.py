"""Alarms, the SNS topic they notify and a CloudWatch dashboard for an agent deployment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args

Value = str | pulumi.Output[str]

# AWS services that publish to the alarm topic; each needs the topic policy and the key policy.
PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com",
              "costalerts.amazonaws.com", "backup.amazonaws.com")


class QueueWatch(ComponentArgs):
    """An SQS queue and its DLQ to alarm on."""

    label: str
    """Short name used in alarm names (`tasks`)."""
    queue_name: Value
    dlq_name: Value


class ServiceWatch(ComponentArgs):
    """An ECS service to alarm on (CPU and memory)."""

    label: str
    cluster_name: Value
    service_name: Value


class LoadBalancerWatch(ComponentArgs):
    """An ALB and its target group to alarm on (5xx rate, p99 latency)."""

    arn_suffix: Value
    target_group_arn_suffix: Value


class ObservabilityArgs(ComponentArgs):
    """SNS alarm topic (KMS-encrypted), the alarms an agent deployment needs, a dashboard.

    Cost: $0.10/month per standard alarm ($0.30 for metric-math/percentile ones), $3/month per
    dashboard beyond the free three, $1/month for the topic's KMS key; email delivery is free.
    """

    emails: list[str] = []
    """Email subscribers of the alarm topic (each must confirm the subscription AWS mails them)."""
    queues: list[QueueWatch] = []
    """Queues: age of the oldest task and DLQ depth."""
    services: list[ServiceWatch] = []
    """ECS services: CPU and memory utilisation."""
    load_balancer: LoadBalancerWatch | None = None
    """The public ALB: 5xx rate and p99 latency."""
    function_names: list[Value] = []
    """Lambda functions: errors and throttles."""
    redis_cluster_ids: list[Value] = []
    """ElastiCache member cluster ids (`<group>-001`): engine CPU and memory."""
    db_cluster_ids: list[Value] = []
    """Aurora cluster identifiers: CPU and Serverless v2 capacity (ACU) utilisation."""
    queue_age_seconds: int = Field(900, ge=60)
    """Oldest task older than this: workers are not keeping up (or are down)."""
    error_rate_percent: float = Field(5, gt=0, le=100)
    """5xx responses as a percent of requests, over 5 minutes."""
    p99_latency_seconds: float = Field(10, gt=0)
    """p99 target response time. Agent runs are slow; tune to your model's latency."""
    cpu_percent: int = Field(85, ge=10, le=100)
    """CPU (services, cache engine, database) above this for 15 minutes."""
    memory_percent: int = Field(85, ge=10, le=100)
    """Memory (services, cache) and capacity (Aurora ACU) above this for 15 minutes."""
    dashboard: bool = True
    """Create the CloudWatch dashboard."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["alarm", "dashboard", "key", "subscription", "topic", "topic_policy"], Transform] = {}
    """Escape hatch per child role (`alarm`, `dashboard`, `key`, `subscription`, `topic`, `topic_policy`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Observability(pulumi.ComponentResource):
    """Alarms on 5xx rate, p99 latency, queue age, DLQ depth, service/cache/database load."""

    topic_arn: pulumi.Output[str]
    """The alarm topic; budgets, anomaly alerts and the secret-age rule publish here too."""
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Alarm children by logical name."""
    dashboard_url: pulumi.Output[str] | None
    """Console URL of the dashboard."""

    def __init__(self, name: str, args: ObservabilityArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(ObservabilityArgs, args, name)
        super().__init__("agent-infra:aws:Observability", name, None, opts)
        self.args = args
        child = self._child = ChildFactory(self, args.transforms, args.tags)
        account = aws.get_caller_identity_output().account_id
        region = aws.get_region_output().region
        self.key = child("key", aws.kms.Key, f"{name}-alarms", description=f"agent-infra alarm topic ({name})",
                         enable_key_rotation=True, deletion_window_in_days=30,
                         policy=account.apply(_key_policy))
        self.topic = child("topic", aws.sns.Topic, f"{name}-alarms", kms_master_key_id=self.key.arn)
        child("topic_policy", aws.sns.TopicPolicy, f"{name}-alarms-policy", arn=self.topic.arn,
              policy=pulumi.Output.all(self.topic.arn, account).apply(lambda a: _topic_policy(a[0], a[1])))
        for index, email in enumerate(args.emails):
            child("subscription", aws.sns.TopicSubscription, f"{name}-alarms-email-{index}",
                  topic=self.topic.arn, protocol="email", endpoint=email)
        self.topic_arn = self.topic.arn
        self.alarms = {}
        widgets: list[Any] = []

        for q in args.queues:
            self._alarm(f"{name}-{q.label}-age", "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": q.queue_name},
                        args.queue_age_seconds, statistic="Maximum",
                        description=f"Oldest {q.label} task older than {args.queue_age_seconds} s: workers behind")
            self._alarm(f"{name}-{q.label}-dlq", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                        {"QueueName": q.dlq_name}, 0, statistic="Maximum", periods=1,
                        description=f"Tasks in the {q.label} DLQ: inspect and replay them")
            widgets.append(_widget(f"Queue {q.label}", region, [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q.queue_name],
                ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q.queue_name, {"yAxis": "right"}],
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q.dlq_name]]))
        for s in args.services:
            dims = {"ClusterName": s.cluster_name, "ServiceName": s.service_name}
            self._alarm(f"{name}-{s.label}-cpu", "AWS/ECS", "CPUUtilization", dims, args.cpu_percent, periods=3,
                        description=f"{s.label} CPU above {args.cpu_percent}% for 15 min: scaling at its max?")
            self._alarm(f"{name}-{s.label}-memory", "AWS/ECS", "MemoryUtilization", dims, args.memory_percent,
                        periods=3, description=f"{s.label} memory above {args.memory_percent}% for 15 min")
            widgets.append(_widget(f"Service {s.label}", region, [
                ["AWS/ECS", "CPUUtilization", "ClusterName", s.cluster_name, "ServiceName", s.service_name],
                ["AWS/ECS", "MemoryUtilization", "ClusterName", s.cluster_name, "ServiceName", s.service_name]]))
        if args.load_balancer is not None:
            self._load_balancer_alarms(name, args.load_balancer, args)
            lb = args.load_balancer.arn_suffix
            widgets.append(_widget("Load balancer", region, [
                ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", lb, {"stat": "Sum"}],
                ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", lb, {"stat": "Sum"}],
                ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb, {"stat": "p99", "yAxis": "right"}]]))
        for index, function in enumerate(args.function_names):
            self._alarm(f"{name}-function-{index}-errors", "AWS/Lambda", "Errors", {"FunctionName": function}, 0,
                        statistic="Sum", periods=1, description="Function errors (see its log group)")
            self._alarm(f"{name}-function-{index}-throttles", "AWS/Lambda", "Throttles", {"FunctionName": function},
                        0, statistic="Sum", periods=1, description="Function throttled: reserved concurrency too low?")
        for index, cache in enumerate(args.redis_cluster_ids):
            dims = {"CacheClusterId": cache}
            self._alarm(f"{name}-redis-{index}-cpu", "AWS/ElastiCache", "EngineCPUUtilization", dims,
                        args.cpu_percent, periods=3, description="Redis engine CPU high: larger node type?")
            self._alarm(f"{name}-redis-{index}-memory", "AWS/ElastiCache", "DatabaseMemoryUsagePercentage", dims,
                        args.memory_percent, periods=3, description="Redis memory high: evictions of session state")
            widgets.append(_widget(f"Redis {index}", region, [
                ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", cache],
                ["AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "CacheClusterId", cache]]))
        for index, cluster in enumerate(args.db_cluster_ids):
            dims = {"DBClusterIdentifier": cluster}
            self._alarm(f"{name}-db-{index}-cpu", "AWS/RDS", "CPUUtilization", dims, args.cpu_percent, periods=3,
                        description="Database CPU high")
            self._alarm(f"{name}-db-{index}-capacity", "AWS/RDS", "ACUUtilization", dims, args.memory_percent,
                        periods=3, description="Aurora near max_capacity_acu: raise database.max_capacity_acu")
            widgets.append(_widget(f"Database {index}", region, [
                ["AWS/RDS", "CPUUtilization", "DBClusterIdentifier", cluster],
                ["AWS/RDS", "ACUUtilization", "DBClusterIdentifier", cluster],
                ["AWS/RDS", "DatabaseConnections", "DBClusterIdentifier", cluster, {"yAxis": "right"}]]))

        self.dashboard_url = None
        if args.dashboard:
            dashboard_name = physical_name(name, 255)
            body = pulumi.Output.all(*widgets).apply(
                lambda ws: json.dumps({"widgets": [
                    {**w, "x": 12 * (i % 2), "y": 6 * (i // 2), "width": 12, "height": 6} for i, w in enumerate(ws)]}))
            self.dashboard = child("dashboard", aws.cloudwatch.Dashboard, f"{name}-dashboard",
                                   dashboard_name=dashboard_name, dashboard_body=body)
            self.dashboard_url = region.apply(
                lambda r: f"https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#dashboards:name={dashboard_name}")
        self.register_outputs({"topic_arn": self.topic_arn, "dashboard_url": self.dashboard_url})

    def _alarm(self, logical: str, namespace: str, metric: str, dimensions: Mapping[str, Value], threshold: float,
               *, statistic: str = "Average", periods: int = 2, description: str) -> aws.cloudwatch.MetricAlarm:
        alarm = self._child(
            "alarm", aws.cloudwatch.MetricAlarm, logical,
            alarm_description=description, namespace=namespace, metric_name=metric, dimensions=dict(dimensions),
            statistic=statistic, period=300, evaluation_periods=periods, datapoints_to_alarm=periods,
            threshold=threshold, comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn])
        self.alarms[logical] = alarm
        return alarm

    def _load_balancer_alarms(self, name: str, lb: LoadBalancerWatch, args: ObservabilityArgs) -> None:
        dims = {"LoadBalancer": lb.arn_suffix}

        def query(id_: str, metric: str) -> dict[str, Any]:
            return {"id": id_, "return_data": False, "metric": {
                "namespace": "AWS/ApplicationELB", "metric_name": metric, "dimensions": dims, "period": 300,
                "stat": "Sum"}}

        self.alarms[f"{name}-5xx-rate"] = self._child(
            "alarm", aws.cloudwatch.MetricAlarm, f"{name}-5xx-rate",
            alarm_description=f"5xx responses above {args.error_rate_percent}% of requests",
            comparison_operator="GreaterThanThreshold", threshold=args.error_rate_percent,
            evaluation_periods=2, datapoints_to_alarm=2, treat_missing_data="notBreaching",
            metric_queries=[
                query("requests", "RequestCount"), query("elb5xx", "HTTPCode_ELB_5XX_Count"),
                query("target5xx", "HTTPCode_Target_5XX_Count"),
                {"id": "rate", "return_data": True, "label": "5xx %",
                 "expression": "100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / IF(requests > 0, requests, 1)"}],
            alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn])
        self.alarms[f"{name}-p99-latency"] = self._child(
            "alarm", aws.cloudwatch.MetricAlarm, f"{name}-p99-latency",
            alarm_description=f"p99 response time above {args.p99_latency_seconds} s",
            namespace="AWS/ApplicationELB", metric_name="TargetResponseTime",
            dimensions={**dims, "TargetGroup": lb.target_group_arn_suffix}, extended_statistic="p99",
            period=300, evaluation_periods=3, datapoints_to_alarm=3, threshold=args.p99_latency_seconds,
            comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn])


def _widget(title: str, region: pulumi.Output[str], metrics: list[list[Any]]) -> pulumi.Output[dict[str, Any]]:
    return pulumi.Output.all(region, pulumi.Output.all(*[pulumi.Output.all(*m) for m in metrics])).apply(
        lambda a: {"type": "metric", "properties": {"title": title, "region": a[0], "metrics": a[1],
                                                    "stat": "Average", "period": 300, "view": "timeSeries"}})


def _key_policy(account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdmin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AlarmPublishers", "Effect": "Allow", "Principal": {"Service": list(PUBLISHERS)},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]})


def _topic_policy(topic_arn: str, account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AwsPublishers", "Effect": "Allow", "Principal": {"Service": list(PUBLISHERS)},
         "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
