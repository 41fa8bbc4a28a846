"""The AWS hybrid topology on the offline plan: wiring, security groups, scaling, production switches."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agent_infra.components.topology import deploy

from agent_infra.offline import Plan, PlannedResource, run_project, synthesize

SG_RULE_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
POLICY = "aws:appautoscaling/policy:Policy"


@pytest.fixture(scope="module")
def prod(repo_root: Any) -> Plan:
    return run_project(repo_root, "prod")


@pytest.fixture(scope="module")
def dev() -> Plan:
    from agent_infra.components.config import load_deployment

    config = load_deployment({"cloud": "aws", "topology": "hybrid", "environment": "dev",
                              "app": {"image": "public.ecr.aws/acme/agent-app:1.2.3"},
                              "budget": {"emails": ["team@example.com"]}})
    return synthesize(lambda: deploy("agent", config), stack="dev")


def container(plan: Plan, service: str) -> dict[str, Any]:
    return json.loads(plan.one(TASK_DEF, f"agent-{service}").inputs["containerDefinitions"])[0]


@pytest.mark.parametrize("service", ["api", "worker"])
def test_app_environment_names_the_real_queue_redis_and_database(prod: Plan, service: str) -> None:
    app = container(prod, service)
    env = {e["name"]: e["value"] for e in app["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in app["secrets"]}
    queue = prod.one("aws:sqs/queue:Queue", "agent-tasks")
    cluster = prod.one("aws:rds/cluster:Cluster", "agent-db")
    assert env["AGENT_QUEUE_URL"] == queue.outputs["url"]
    assert env["AGENT_QUEUE_DLQ_URL"] == prod.one("aws:sqs/queue:Queue", "agent-tasks-dlq").outputs["url"]
    assert env["AGENT_DATABASE_URL"] == (f"postgresql://agent_admin@{cluster.outputs['endpoint']}:5432/agent"
                                         "?ssl=require")
    assert env["AGENT_STATE_BACKEND"] == "redis" and env["AGENT_VECTOR_BACKEND"] == "pgvector"
    assert env["AGENT_ENVIRONMENT"] == "prod" and env["AGENT_PORT"] == "8000"
    # Secrets are references only: Secrets Manager ARNs, never values.
    redis_secret = prod.one("aws:secretsmanager/secret:Secret", "agent-redis-auth").outputs["arn"]
    assert secrets["AGENT_REDIS_URL"] == f"{redis_secret}:url::"
    master = cluster.outputs["masterUserSecrets"][0]["secretArn"]
    assert secrets["PGPASSWORD"] == f"{master}:password::"
    assert "AGENT_DATABASE_SECRET_ARN" not in env  # agent_app reads no such setting: PGPASSWORD carries it
    for name in ("AGENT_API_KEYS", "AGENT_WEBHOOK_SIGNING_SECRET", "AGENT_CALLBACK_SIGNING_SECRET"):
        assert secrets[name].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-infra/prod/")
        assert name not in env
    assert not any("offline-secret" in json.dumps(app) for _ in [0])


def test_redis_endpoint_reaches_the_url_secret(prod: Plan) -> None:
    group = prod.one("aws:elasticache/replicationGroup:ReplicationGroup", "agent-redis")
    assert prod.outputs["redis_endpoint"] == group.outputs["primaryEndpointAddress"]
    version = prod.one("aws:secretsmanager/secretVersion:SecretVersion", "agent-redis-auth")
    assert version.inputs["secretStringWo"] == "[secret]" and "secretString" not in version.inputs
    assert group.inputs["authTokenWo"] == "[secret]" and "authToken" not in group.inputs
    assert group.inputs["transitEncryptionEnabled"] is True and group.inputs["atRestEncryptionEnabled"] is True


def test_secret_values_are_secret_in_the_plan(prod: Plan) -> None:
    versions = [v for v in prod.of_type("aws:secretsmanager/secretVersion:SecretVersion") if "secretString" in v.inputs]
    assert len(versions) == 3
    assert all(v.inputs["secretString"] == "[secret]" for v in versions)


def _flows(plan: Plan) -> set[tuple[str, str, int]]:
    groups = {r.id: r.name for r in plan.of_type("aws:ec2/securityGroup:SecurityGroup")}
    return {(groups[r.inputs["referencedSecurityGroupId"]], groups[r.inputs["securityGroupId"]], r.inputs["fromPort"])
            for r in plan.of_type(SG_RULE_IN) if r.inputs.get("referencedSecurityGroupId")}


def test_security_groups_allow_exactly_the_topology_flows(prod: Plan) -> None:
    assert _flows(prod) == {("agent-lb", "agent-api", 8000), ("agent-api", "agent-redis", 6379),
                            ("agent-api", "agent-db", 5432), ("agent-worker", "agent-redis", 6379),
                            ("agent-worker", "agent-db", 5432)}
    cidr_rules = {(r.name, r.inputs["cidrIpv4"], r.inputs["fromPort"]) for r in prod.of_type(SG_RULE_IN)
                  if r.inputs.get("cidrIpv4")}
    assert cidr_rules == {("agent-lb-public-80", "0.0.0.0/0", 80), ("agent-lb-public-443", "0.0.0.0/0", 443),
                          ("agent-network-endpoints-https", "10.40.0.0/16", 443)}


def test_api_scales_on_cpu_and_requests_per_target(prod: Plan) -> None:
    cpu = prod.one(POLICY, "agent-api-cpu").inputs["targetTrackingScalingPolicyConfiguration"]
    assert cpu["targetValue"] == 60
    assert cpu["predefinedMetricSpecification"]["predefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    requests = prod.one(POLICY, "agent-api-requests").inputs["targetTrackingScalingPolicyConfiguration"]
    lb = prod.one("aws:lb/loadBalancer:LoadBalancer", "agent-lb").outputs["arnSuffix"]
    tg = prod.one("aws:lb/targetGroup:TargetGroup", "agent-lb-api").outputs["arnSuffix"]
    assert requests["targetValue"] == 100
    assert requests["predefinedMetricSpecification"] == {"predefinedMetricType": "ALBRequestCountPerTarget",
                                                         "resourceLabel": f"{lb}/{tg}"}
    target = prod.one("aws:appautoscaling/target:Target", "agent-api-scaling").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 10)


def test_workers_scale_on_backlog_per_task_of_the_real_queue(prod: Plan) -> None:
    config = prod.one(POLICY, "agent-worker-backlog").inputs["targetTrackingScalingPolicyConfiguration"]
    assert config["targetValue"] == 5  # scaling.jobs_per_worker
    metrics = {m["id"]: m for m in config["customizedMetricSpecification"]["metrics"]}
    queue_name = prod.one("aws:sqs/queue:Queue", "agent-tasks").outputs["name"]
    assert metrics["visible"]["metricStat"]["metric"]["dimensions"] == [{"name": "QueueName", "value": queue_name}]
    assert metrics["inflight"]["metricStat"]["metric"]["metricName"] == "ApproximateNumberOfMessagesNotVisible"
    tasks = metrics["tasks"]["metricStat"]["metric"]
    assert (tasks["namespace"], tasks["metricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert {d["name"]: d["value"] for d in tasks["dimensions"]} == {
        "ClusterName": "agent-infra-prod-agent-cluster", "ServiceName": "agent-infra-prod-agent-worker"}
    assert metrics["backlog_per_task"]["returnData"] is True
    assert "visible" in metrics["backlog_per_task"]["expression"]
    wake = prod.one("aws:cloudwatch/metricAlarm:MetricAlarm", "agent-worker-wake").inputs
    assert wake["alarmActions"] == [prod.one(POLICY, "agent-worker-wake").outputs["arn"]]


def test_worker_may_protect_only_its_own_cluster_tasks(prod: Plan) -> None:
    policy = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy", "agent-worker-task").inputs["policy"])
    protect = next(s for s in policy["Statement"] if s.get("Sid") == "ProtectOwnTask")
    assert protect["Action"] == ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
    assert protect["Resource"] == ["arn:aws:ecs:us-east-1:123456789012:task/agent-infra-prod-agent-cluster/*"]


def test_scheduled_actions_use_aws_cron_and_timezone(prod: Plan) -> None:
    business = prod.one("aws:appautoscaling/scheduledAction:ScheduledAction", "agent-api-business-hours").inputs
    assert business["schedule"] == "cron(0 8 ? * 2-6 *)"
    assert business["timezone"] == "Europe/Berlin"
    assert business["scalableTargetAction"] == {"minCapacity": 4, "maxCapacity": 10}


@pytest.mark.parametrize(("plan_name", "expected"), [
    ("prod", {"nat": 3, "multi_az": True, "deletion_protection": True, "db_instances": 2, "cache_nodes": 2,
              "spot": "FARGATE", "vault_lock": 1, "endpoints": 9}),
    ("dev", {"nat": 1, "multi_az": False, "deletion_protection": False, "db_instances": 1, "cache_nodes": 1,
             "spot": "FARGATE_SPOT", "vault_lock": 0, "endpoints": 2}),
])
def test_production_switches(request: pytest.FixtureRequest, plan_name: str, expected: dict[str, Any]) -> None:
    plan: Plan = request.getfixturevalue(plan_name)
    group = plan.one("aws:elasticache/replicationGroup:ReplicationGroup", "agent-redis").inputs
    cluster = plan.one("aws:rds/cluster:Cluster", "agent-db").inputs
    worker = plan.one("aws:ecs/service:Service", "agent-worker").inputs
    assert {
        "nat": len(plan.of_type("aws:ec2/natGateway:NatGateway")),
        "multi_az": group["multiAzEnabled"],
        "deletion_protection": cluster["deletionProtection"],
        "db_instances": len(plan.of_type("aws:rds/clusterInstance:ClusterInstance")),
        "cache_nodes": group["numCacheClusters"],
        "spot": worker["capacityProviderStrategies"][0]["capacityProvider"],
        "vault_lock": len(plan.of_type("aws:backup/vaultLockConfiguration:VaultLockConfiguration")),
        "endpoints": len(plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")),
    } == expected
    assert cluster["skipFinalSnapshot"] is (not expected["deletion_protection"])
    assert cluster["storageEncrypted"] is True and cluster["manageMasterUserPassword"] is True


def _statements(resource: PlannedResource) -> list[dict[str, Any]]:
    statements = json.loads(resource.inputs["policy"])["Statement"]
    return statements if isinstance(statements, list) else [statements]


@pytest.mark.parametrize("plan_name", ["prod", "dev"])
def test_no_iam_statement_grants_everything(request: pytest.FixtureRequest, plan_name: str) -> None:
    plan: Plan = request.getfixturevalue(plan_name)
    policies = plan.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(policies) >= 4
    for policy in policies:
        for statement in _statements(policy):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert not any(a == "*" or a.endswith(":*") for a in actions), (policy.name, statement)
            if "*" in resources:
                assert actions == ["ecr:GetAuthorizationToken"], (policy.name, statement)


@pytest.mark.parametrize("plan_name", ["prod", "dev"])
def test_every_log_group_has_retention_and_every_queue_a_dlq(request: pytest.FixtureRequest, plan_name: str) -> None:
    plan: Plan = request.getfixturevalue(plan_name)
    groups = plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups and all(g.inputs.get("retentionInDays") for g in groups)
    queues = [q for q in plan.of_type("aws:sqs/queue:Queue") if "redrivePolicy" in q.inputs]
    dlq_arn = plan.one("aws:sqs/queue:Queue", "agent-tasks-dlq").outputs["arn"]
    assert [json.loads(q.inputs["redrivePolicy"])["deadLetterTargetArn"] for q in queues] == [dlq_arn]


def test_alarms_cover_the_checklist(prod: Plan) -> None:
    alarms = {a.name: a.inputs for a in prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    topic = prod.one("aws:sns/topic:Topic").outputs["arn"]
    for name in ("agent-observability-5xx-rate", "agent-observability-p99-latency", "agent-observability-tasks-age",
                 "agent-observability-tasks-dlq", "agent-observability-api-cpu", "agent-observability-worker-memory",
                 "agent-observability-redis-0-cpu", "agent-observability-db-0-capacity"):
        assert alarms[name]["alarmActions"] == [topic], name
    assert alarms["agent-observability-tasks-age"]["threshold"] == 1800  # 2x timeouts.run_seconds
    assert alarms["agent-observability-p99-latency"]["extendedStatistic"] == "p99"


def test_budget_notifies_emails_and_topic_filtered_by_stack(prod: Plan) -> None:
    budget = prod.one("aws:budgets/budget:Budget").inputs
    assert budget["limitAmount"] == "1500.00"
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": ["user:stack$prod"]}]
    kinds = [(n["notificationType"], n["threshold"]) for n in budget["notifications"]]
    assert kinds == [("ACTUAL", 50), ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)]
    assert budget["notifications"][0]["subscriberEmailAddresses"] == ["platform-team@example.com",
                                                                     "finance@example.com"]


def test_alb_is_https_with_redirect_waf_and_logs(prod: Plan) -> None:
    lb = prod.one("aws:lb/loadBalancer:LoadBalancer", "agent-lb").inputs
    assert lb["idleTimeout"] == 600 and lb["dropInvalidHeaderFields"] is True
    assert lb["accessLogs"]["enabled"] is True
    http = prod.one("aws:lb/listener:Listener", "agent-lb-http").inputs
    assert http["defaultActions"][0]["redirect"]["protocol"] == "HTTPS"
    assert prod.one("aws:lb/listener:Listener", "agent-lb-https").inputs["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    tg = prod.one("aws:lb/targetGroup:TargetGroup", "agent-lb-api").inputs
    assert tg["healthCheck"]["path"] == "/healthz"
    rule = prod.one("aws:wafv2/webAcl:WebAcl").inputs["rules"][0]
    assert rule["statement"]["rateBasedStatement"]["limit"] == 15_000  # 50 rps x 300 s
    assert prod.one("aws:wafv2/webAclAssociation:WebAclAssociation").inputs["resourceArn"] == \
        prod.one("aws:lb/loadBalancer:LoadBalancer", "agent-lb").outputs["arn"]


def test_every_taggable_resource_carries_the_stack_tags(prod: Plan) -> None:
    tagged = [r for r in prod.custom_resources() if r.type.startswith("aws:") and "tags" in r.inputs]
    assert len(tagged) > 50
    for resource in tagged:
        tags = resource.inputs["tags"]
        assert (tags["owner"], tags["cost-center"], tags["environment"], tags["stack"]) == (
            "platform-team", "ai-agents", "prod", "prod"), resource.name
