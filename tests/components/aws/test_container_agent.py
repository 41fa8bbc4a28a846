"""The AWS container topology (ContainerAgent) on the offline plan, from the prod stack's config with
`topology: container`: wiring, security-group flows, config secrets by ARN, least privilege, hygiene."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_infra.offline import Plan, read_project, stack_config, synthesize

SG_RULE_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"


@pytest.fixture(scope="module")
def prod(repo_root: Any) -> Plan:
    from agent_infra.components.config import load_deployment
    from agent_infra.components.topology import deploy

    config, secret_keys = stack_config(repo_root, read_project(repo_root), "prod")
    config["agent-infra:deployment"] = {**config["agent-infra:deployment"], "topology": "container"}
    return synthesize(lambda: deploy("agent", load_deployment(config["agent-infra:deployment"])),
                      stack="prod", config=config, secret_keys=secret_keys, region="us-east-1")


def container(plan: Plan, service: str) -> dict[str, Any]:
    return json.loads(plan.one(TASK_DEF, f"agent-{service}").inputs["containerDefinitions"])[0]


def test_container_topology_has_no_database(prod: Plan) -> None:
    assert prod.one("agent-infra:aws:ContainerAgent", "agent")
    assert not prod.of_type("aws:rds/cluster:Cluster")
    assert not prod.of_type("agent-infra:aws:Backup")  # nothing stateful to back up besides Redis snapshots


def test_security_groups_allow_exactly_the_topology_flows(prod: Plan) -> None:
    groups = {r.id: r.name for r in prod.of_type("aws:ec2/securityGroup:SecurityGroup")}
    flows = {(groups[r.inputs["referencedSecurityGroupId"]], groups[r.inputs["securityGroupId"]], r.inputs["fromPort"])
             for r in prod.of_type(SG_RULE_IN) if r.inputs.get("referencedSecurityGroupId")}
    assert flows == {("agent-lb", "agent-api", 8000), ("agent-api", "agent-redis", 6379),
                     ("agent-worker", "agent-redis", 6379)}


@pytest.mark.parametrize("service", ["api", "worker"])
def test_config_secrets_become_secrets_manager_secrets_referenced_by_arn(prod: Plan, service: str) -> None:
    key_arn = prod.one("aws:kms/key:Key", "agent-secrets").outputs["arn"]
    secret = prod.one("aws:secretsmanager/secret:Secret", "agent-secrets-api-keys")
    assert secret.inputs["kmsKeyId"] == key_arn
    version = prod.one("aws:secretsmanager/secretVersion:SecretVersion", "agent-secrets-api-keys-version")
    assert version.inputs["secretString"] == "[secret]"
    app = container(prod, service)
    secrets = {s["name"]: s["valueFrom"] for s in app["secrets"]}
    env = {e["name"] for e in app["environment"]}
    assert secrets["AGENT_API_KEYS"] == secret.outputs["arn"]
    assert {"AGENT_API_KEYS", "AGENT_WEBHOOK_SIGNING_SECRET", "AGENT_REDIS_URL"} <= set(secrets)
    assert not {"AGENT_API_KEYS", "AGENT_WEBHOOK_SIGNING_SECRET", "AGENT_REDIS_URL"} & env
    assert "offline-secret" not in json.dumps(app)


def test_worker_backlog_scaling_uses_the_real_queue_and_service(prod: Plan) -> None:
    config = prod.one("aws:appautoscaling/policy:Policy", "agent-worker-backlog").inputs[
        "targetTrackingScalingPolicyConfiguration"]
    assert config["targetValue"] == 5  # scaling.jobs_per_worker
    metrics = {m["id"]: m["metricStat"]["metric"] for m in config["customizedMetricSpecification"]["metrics"]
               if "metricStat" in m}
    queue_name = prod.one("aws:sqs/queue:Queue", "agent-tasks").outputs["name"]
    assert metrics["visible"]["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert metrics["visible"]["dimensions"] == [{"name": "QueueName", "value": queue_name}]
    assert {d["name"]: d["value"] for d in metrics["tasks"]["dimensions"]} == {
        "ClusterName": "agent-infra-prod-agent-cluster", "ServiceName": "agent-infra-prod-agent-worker"}
    schedules = {a.name: a.inputs["schedule"]
                 for a in prod.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")}
    assert schedules == {"agent-api-business-hours": "cron(0 8 ? * 2-6 *)",
                         "agent-worker-nightly-batch": "cron(0 1 * * ? *)"}


def test_no_iam_statement_grants_every_action_on_every_resource(prod: Plan) -> None:
    policies = prod.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(policies) >= 4
    for policy in policies:
        statements = json.loads(policy.inputs["policy"])["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert not ("*" in actions and "*" in resources), (policy.name, statement)
            assert not any(a == "*" or a.endswith(":*") for a in actions), (policy.name, statement)


def test_every_log_group_has_retention_and_every_queue_a_dlq(prod: Plan) -> None:
    groups = prod.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert {g.name for g in groups} >= {"agent-api", "agent-worker", "agent-network-flow-logs"}
    assert all(g.inputs.get("retentionInDays") == 90 for g in groups)
    queues = prod.of_type("aws:sqs/queue:Queue")
    dlqs = {q.outputs["arn"] for q in queues if q.name.endswith("-dlq")}
    for queue in queues:
        if queue.name.endswith("-dlq"):
            continue
        assert json.loads(queue.inputs["redrivePolicy"])["deadLetterTargetArn"] in dlqs, queue.name


def test_worker_health_endpoint_backs_its_container_health_check(prod: Plan) -> None:
    worker, api = container(prod, "worker"), container(prod, "api")
    env = {e["name"]: e["value"] for e in worker["environment"]}
    assert env["AGENT_WORKER_HEALTH_PORT"] == "8001"
    assert worker["command"] == ["agent-app", "worker"] and "portMappings" not in worker
    assert worker["healthCheck"]["command"] == [
        "CMD-SHELL", "python -c \"import urllib.request as u; "
                     "u.urlopen('http://127.0.0.1:8001/healthz', timeout=4)\" || exit 1"]
    assert "AGENT_WORKER_HEALTH_PORT" not in {e["name"] for e in api["environment"]}
    assert "127.0.0.1:8000/healthz" in api["healthCheck"]["command"][1]
