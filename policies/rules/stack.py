"""Stack-wide checks: a budget with alerts, a dead-letter queue per queue, required tags."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..engine import Context, Finding, Resource, Rule, is_unknown
from ._common import (
    AWS_BUDGET,
    CLOUD_RUN_SERVICE,
    CLOUD_SQL,
    GCP_BUDGET,
    MEMORYSTORE,
    PUBSUB_SUBSCRIPTION,
    SQS_QUEUE,
    SQS_REDRIVE,
    as_dict,
    as_list,
    of_type,
    present,
    resource_tags,
    stack_rule,
)
from .observability import dead_letter_queues

RULES: list[Rule] = []


def _aws_budget_notifies(budget: Resource) -> bool:
    notifications = budget.get("notifications")
    if is_unknown(notifications):
        return True
    return any(as_list(as_dict(n).get("subscriberEmailAddresses")) or as_list(as_dict(n).get("subscriberSnsTopicArns"))
               for n in as_list(notifications))


def _gcp_budget_notifies(budget: Resource) -> bool:
    rules, updates = budget.get("thresholdRules"), budget.get("allUpdatesRule")
    if is_unknown(rules) or is_unknown(updates):
        return True
    return bool(as_list(rules)) and bool(as_dict(updates))


@stack_rule(
    RULES, name="budget-with-notifications", area="stack", level="mandatory", severity="high",
    description="Checks whether a stack that creates AWS or GCP resources also creates a budget that notifies "
                "someone.",
    remediation="Add an aws.budgets.Budget (or gcp.billing.Budget) with notifications to an email or SNS topic; "
                "agent-infra creates one from budget.monthly_limit_usd and budget.emails.",
)
def budget_with_notifications(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    for cloud, budget_type, notifies in (("aws", AWS_BUDGET, _aws_budget_notifies),
                                         ("gcp", GCP_BUDGET, _gcp_budget_notifies)):
        used = [r for r in resources if r.type.startswith(f"{cloud}:") and r.type != budget_type]
        if not used:
            continue
        budgets = of_type(resources, budget_type)
        if not budgets:
            yield Finding(f"the stack creates {len(used)} {cloud.upper()} resources but no budget")
        elif not any(notifies(b) for b in budgets):
            for budget in budgets:
                yield Finding("budget has no notification subscribers", urn=budget.urn)


@stack_rule(
    RULES, name="queue-has-dlq", area="stack", level="mandatory", severity="high",
    description="Checks whether every queue and subscription sends repeatedly failing messages to a "
                "dead-letter queue.",
    remediation="SQS: set redrivePolicy {deadLetterTargetArn: dlq.arn, maxReceiveCount: 3}; Pub/Sub: set "
                "deadLetterPolicy {deadLetterTopic, maxDeliveryAttempts}. agent-infra's Queue always does.",
)
def queue_has_dlq(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    dlqs = {q.urn for q in dead_letter_queues(resources)}
    redriven = {urn for r in of_type(resources, SQS_REDRIVE) for urn in r.dependencies}
    for queue in of_type(resources, SQS_QUEUE):
        if queue.urn in dlqs or queue.urn in redriven or present(queue.get("redrivePolicy")):
            continue
        yield Finding("queue has no redrivePolicy, so a poison message is retried until it expires", urn=queue.urn)
    subscriptions = of_type(resources, PUBSUB_SUBSCRIPTION)
    dead_topics = {str(s.get("deadLetterPolicy.deadLetterTopic")) for s in subscriptions}
    for sub in subscriptions:
        if sub.get("deadLetterPolicy") is not None or str(sub.get("topic")) in dead_topics:
            continue
        if any(d.urn in sub.dependencies for d in subscriptions if d is not sub) or is_unknown(sub.get("topic")):
            continue
        yield Finding("subscription has no deadLetterPolicy", urn=sub.urn)


# AWS resource types we create that take `tags` (checked even when the program passed none).
TAGGABLE_AWS = frozenset({
    "aws:lambda/function:Function", "aws:sqs/queue:Queue", "aws:dynamodb/table:Table", "aws:apigatewayv2/api:Api",
    "aws:apigatewayv2/stage:Stage", "aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup",
    "aws:lb/listener:Listener", "aws:ecs/cluster:Cluster", "aws:ecs/service:Service",
    "aws:ecs/taskDefinition:TaskDefinition", "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:rds/cluster:Cluster", "aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance",
    "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:iam/role:Role", "aws:iam/policy:Policy",
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:wafv2/webAcl:WebAcl",
    "aws:secretsmanager/secret:Secret", "aws:sns/topic:Topic", "aws:kms/key:Key", "aws:ecr/repository:Repository",
    "aws:budgets/budget:Budget", "aws:lambda/eventSourceMapping:EventSourceMapping",
})
LABELLED_GCP = frozenset({CLOUD_RUN_SERVICE, PUBSUB_SUBSCRIPTION, "gcp:pubsub/topic:Topic", MEMORYSTORE,
                          "gcp:storage/bucket:Bucket", "gcp:secretmanager/secret:Secret"})


@stack_rule(
    RULES, name="required-tags", area="stack", level="advisory", severity="low",
    description="Checks whether taggable AWS resources carry the required tags and GCP resources the required "
                "labels (their own or the provider's default tags).",
    remediation="Tag every resource (or set the provider's defaultTags) with the required keys; agent-infra adds "
                "project, stack, environment and managed-by, plus the stack's `tags`.",
    config={"requiredTags": {"type": "array", "items": {"type": "string"},
                             "default": ["project", "stack", "environment"],
                             "description": "Tag (label) keys every taggable resource must have."}},
)
def required_tags(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    for resource in resources:
        if resource.type in TAGGABLE_AWS:
            tags = resource_tags(resource, "tags")
        elif resource.type in LABELLED_GCP:
            tags = resource_tags(resource, "labels")
        elif resource.type == CLOUD_SQL:
            tags = {**as_dict(resource_tags(resource, "labels")), **as_dict(resource.get("settings.userLabels"))}
        else:
            continue
        if tags is None:
            continue
        missing = [key for key in ctx["requiredTags"] if key not in tags]
        if missing:
            yield Finding(f"missing tags: {', '.join(missing)}", urn=resource.urn)


@stack_rule(
    RULES, name="budget-covers-fixed-cost", area="stack", level="advisory", severity="medium",
    description="Checks whether the stack's budget is at least its fixed monthly cost (what it costs with no "
                "traffic: NAT gateways, load balancers, minimum tasks, database and cache floors).",
    remediation="Raise budget.monthly_limit_usd above the fixed floor `agent-infra cost --stack <stack>` prints, or "
                "shrink the floor (one NAT gateway, fewer interface endpoints, lower minimums).",
)
def budget_covers_fixed_cost(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    from ..cost import estimate

    result = estimate(resources)
    if result.budget_usd is not None and result.budget_usd < result.fixed:
        budgets = of_type(resources, AWS_BUDGET) + of_type(resources, GCP_BUDGET)
        yield Finding(f"the budget is ${result.budget_usd:,.2f}/month but the stack's fixed cost is about "
                      f"${result.fixed:,.2f}/month (list prices as of the price table's date), so it alarms "
                      "every month whatever the traffic", urn=budgets[0].urn if budgets else None)
