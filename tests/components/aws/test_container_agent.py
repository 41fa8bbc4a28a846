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
                         "agent-api-business-hours-end": "cron(0 19 ? * 2-6 *)",
                         "agent-worker-nightly-batch": "cron(0 1 * * ? *)",
                         "agent-worker-nightly-batch-end": "cron(0 5 * * ? *)"}


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


def test_api_does_not_consume_the_queue(prod: Plan) -> None:
    # The API's role may only send; a consuming API would fail every receive (and steal tasks).
    assert container(prod, "api")["command"] == ["agent-app", "serve", "--no-worker"]
    assert container(prod, "worker")["command"] == ["agent-app", "worker"]


def test_every_scheduled_raise_has_a_scheduled_restore(prod: Plan) -> None:
    actions = {a.name: a.inputs["scalableTargetAction"]
               for a in prod.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")}
    assert actions["agent-api-business-hours"] == {"minCapacity": 4, "maxCapacity": 10}
    assert actions["agent-api-business-hours-end"] == {"minCapacity": 2, "maxCapacity": 10}
    assert actions["agent-worker-nightly-batch"] == {"minCapacity": 3, "maxCapacity": 20}
    assert actions["agent-worker-nightly-batch-end"] == {"minCapacity": 1, "maxCapacity": 20}
    targets = {t.name: t.inputs for t in prod.of_type("aws:appautoscaling/target:Target")}
    assert (targets["agent-api-scaling"]["minCapacity"], targets["agent-worker-scaling"]["minCapacity"]) == (2, 1)


def test_a_schedule_that_nothing_lowers_again_is_refused_before_anything_is_built(repo_root: Any) -> None:
    from agent_infra.components.config import load_deployment
    from agent_infra.components.errors import ConfigError
    from agent_infra.components.topology import deploy

    config, secret_keys = stack_config(repo_root, read_project(repo_root), "prod")
    raw = dict(config["agent-infra:deployment"])
    raw["scaling"] = {**raw["scaling"], "schedules": [s for s in raw["scaling"]["schedules"]
                                                     if not s["name"].endswith("-end")]}
    with pytest.raises(ConfigError) as error:
        synthesize(lambda: deploy("agent", load_deployment(raw)), stack="prod", config=config,
                   secret_keys=secret_keys, region="us-east-1")
    assert [p.split(":")[0] for p in error.value.problems] == ["scaling.schedules.business-hours",
                                                               "scaling.schedules.nightly-batch"]


def test_bedrock_grant_names_the_geography_inference_profile(prod: Plan) -> None:
    policy = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy", "agent-worker-task").inputs["policy"])
    invoke = next(s for s in policy["Statement"] if s.get("Sid") == "InvokeModel")
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    # System profiles carry a geography prefix (`us.` for us-east-1); a profile named by the bare id matches nothing.
    assert invoke["Resource"] == [f"arn:aws:bedrock:*::foundation-model/{model}",
                                  f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{model}"]


@pytest.mark.parametrize(("model", "region", "profile", "base"), [
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "eu-central-1", "eu.", ""),
    ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "us-west-2", "", "us."),
    ("anthropic.claude-3-haiku-20240307-v1:0", "ap-southeast-2", "apac.", ""),
])
def test_bedrock_profile_prefix_follows_the_region_or_the_model_id(model: str, region: str, profile: str,
                                                                    base: str) -> None:
    from agent_infra.components.aws.bedrock import invoke_model_grant
    from agent_infra.components.aws.iam import policy_document

    def program() -> None:
        import pulumi

        pulumi.export("doc", policy_document([invoke_model_grant(model, region)]))

    doc = json.loads(synthesize(program).outputs["doc"])
    bare = model.removeprefix(base)
    assert doc["Statement"][0]["Resource"] == [
        f"arn:aws:bedrock:*::foundation-model/{bare}",
        f"arn:aws:bedrock:{region}:123456789012:inference-profile/{profile}{model}"]
