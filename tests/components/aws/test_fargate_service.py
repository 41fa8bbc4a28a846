"""FargateService block on the offline plan: hardened task definition, secrets by ARN only, scaling
policies on the right metrics, scheduled actions, least-privilege roles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agent_infra.components.aws import FargateService
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
POLICY = "aws:appautoscaling/policy:Policy"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-infra/prod/api-keys-AbCdEf"
BASE: dict[str, Any] = {"cluster_name": "agent-cluster", "cluster_arn": "arn:aws:ecs:us-east-1:123456789012:cluster/c",
                        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent@sha256:" + "0" * 64,
                        "vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], "log_retention_days": 90,
                        "environment": {"AGENT_PORT": "8000"}, "secrets": {"AGENT_API_KEYS": SECRET_ARN}}


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        FargateService("api", {**BASE, "command": ["agent-app", "serve"], "port": 8000, "cpu": 1, "memory_mb": 1500,
                               "target_group_arn": "arn:tg", "request_count_resource_label": "app/lb/1/targetgroup/tg/2",
                               "min_count": 2, "max_count": 10, "cpu_target_percent": 60, "requests_per_target": 100,
                               "schedules": [{"name": "business-hours", "cron": "0 8 * * 1-5",
                                              "timezone": "Europe/Berlin", "min_count": 4, "max_count": 10},
                                             {"name": "evening", "cron": "0 19 * * 1-5",
                                              "timezone": "Europe/Berlin", "min_count": 2, "max_count": 10}]})
        FargateService("worker", {**BASE, "command": ["agent-app", "worker"], "min_count": 0, "max_count": 20,
                                  "queue_backlog": {"queue_name": "agent-tasks", "jobs_per_task": 5},
                                  "scale_in_protection": True, "capacity_provider": "FARGATE_SPOT",
                                  "schedules": [{"name": "nightly", "cron": "0 1 * * *", "min_count": 3,
                                                 "max_count": 20},
                                                {"name": "morning", "cron": "0 5 * * *", "min_count": 0,
                                                 "max_count": 20}]})
    return synthesize(program, stack="prod")


def container(plan: Plan, name: str) -> dict[str, Any]:
    return json.loads(plan.one(TASK_DEF, name).inputs["containerDefinitions"])[0]


@pytest.mark.parametrize("name", ["api", "worker"])
def test_task_is_hardened(plan: Plan, name: str) -> None:
    app = container(plan, name)
    assert app["user"] == "10001:10001" and app["privileged"] is False
    assert app["readonlyRootFilesystem"] is True
    assert app["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert app["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    assert app["stopTimeout"] == 120
    task = plan.one(TASK_DEF, name).inputs
    assert task["networkMode"] == "awsvpc" and task["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    service = plan.one("aws:ecs/service:Service", name).inputs
    assert service["networkConfiguration"]["assignPublicIp"] is False
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


def test_fargate_size_is_rounded_up(plan: Plan) -> None:
    api = plan.one(TASK_DEF, "api").inputs
    assert (api["cpu"], api["memory"]) == ("1024", "2048")


@pytest.mark.parametrize("name", ["api", "worker"])
def test_secrets_by_arn_never_in_environment(plan: Plan, name: str) -> None:
    app = container(plan, name)
    assert app["secrets"] == [{"name": "AGENT_API_KEYS", "valueFrom": SECRET_ARN}]
    assert app["environment"] == [{"name": "AGENT_PORT", "value": "8000"}]


def test_only_the_api_has_a_port_health_check_and_target_group(plan: Plan) -> None:
    api, worker = container(plan, "api"), container(plan, "worker")
    assert api["portMappings"] == [{"containerPort": 8000, "protocol": "tcp"}]
    assert "127.0.0.1:8000/healthz" in api["healthCheck"]["command"][1]
    assert "portMappings" not in worker and "healthCheck" not in worker
    assert plan.one("aws:ecs/service:Service", "api").inputs["loadBalancers"] == [
        {"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 8000}]


def test_log_group_has_retention(plan: Plan) -> None:
    group = plan.one("aws:cloudwatch/logGroup:LogGroup", "worker")
    assert group.inputs["retentionInDays"] == 90
    assert container(plan, "worker")["logConfiguration"]["options"]["awslogs-group"] == group.inputs["name"]


def test_api_scales_on_cpu_and_requests(plan: Plan) -> None:
    cpu = plan.one(POLICY, "api-cpu").inputs["targetTrackingScalingPolicyConfiguration"]
    assert cpu["targetValue"] == 60
    assert cpu["predefinedMetricSpecification"] == {"predefinedMetricType": "ECSServiceAverageCPUUtilization"}
    requests = plan.one(POLICY, "api-requests").inputs["targetTrackingScalingPolicyConfiguration"]
    assert requests["targetValue"] == 100
    assert requests["predefinedMetricSpecification"] == {"predefinedMetricType": "ALBRequestCountPerTarget",
                                                         "resourceLabel": "app/lb/1/targetgroup/tg/2"}
    target = plan.one("aws:appautoscaling/target:Target", "api-scaling").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 10)


def test_worker_scales_on_backlog_per_running_task(plan: Plan) -> None:
    config = plan.one(POLICY, "worker-backlog").inputs["targetTrackingScalingPolicyConfiguration"]
    assert config["targetValue"] == 5
    metrics = {m["id"]: m for m in config["customizedMetricSpecification"]["metrics"]}
    visible = metrics["visible"]["metricStat"]["metric"]
    assert (visible["namespace"], visible["metricName"], visible["dimensions"]) == (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", [{"name": "QueueName", "value": "agent-tasks"}])
    tasks = metrics["tasks"]["metricStat"]["metric"]
    service_name = plan.one("aws:ecs/service:Service", "worker").inputs["name"]
    assert (tasks["namespace"], tasks["metricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert tasks["dimensions"] == [{"name": "ClusterName", "value": "agent-cluster"},
                                   {"name": "ServiceName", "value": service_name}]
    result = metrics["backlog_per_task"]
    assert result["returnData"] is True
    assert result["expression"] == "(FILL(visible, 0) + FILL(inflight, 0)) / IF(FILL(tasks, 0) > 0, tasks, 1)"
    assert [m["returnData"] for m in metrics.values()].count(True) == 1
    wake = plan.one("aws:cloudwatch/metricAlarm:MetricAlarm", "worker-wake").inputs
    assert wake["alarmActions"] == [plan.one(POLICY, "worker-wake").outputs["arn"]]
    assert not [p for p in plan.of_type(POLICY) if p.name in ("worker-cpu", "worker-requests")]


def test_scheduled_actions_from_args(plan: Plan) -> None:
    actions = {a.name: a.inputs for a in plan.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")}
    assert set(actions) == {"api-business-hours", "api-evening", "worker-nightly", "worker-morning"}
    assert (actions["api-business-hours"]["schedule"], actions["api-business-hours"]["timezone"]) == (
        "cron(0 8 ? * 2-6 *)", "Europe/Berlin")
    assert actions["worker-nightly"]["schedule"] == "cron(0 1 * * ? *)"
    assert actions["worker-nightly"]["scalableTargetAction"] == {"minCapacity": 3, "maxCapacity": 20}


def test_worker_may_protect_only_its_cluster_tasks(plan: Plan) -> None:
    statements = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "worker-task").inputs["policy"])["Statement"]
    assert statements == [{"Sid": "ProtectOwnTask", "Effect": "Allow",
                           "Action": ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"],
                           "Resource": ["arn:aws:ecs:us-east-1:123456789012:task/agent-cluster/*"]}]
    assert plan.one("aws:ecs/service:Service", "worker").inputs["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def test_only_ecr_login_uses_a_wildcard_resource(plan: Plan) -> None:
    statements = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "api-execution").inputs["policy"])["Statement"]
    wildcard = [s for s in statements if "*" in s["Resource"]]
    assert [s["Action"] for s in wildcard] == [["ecr:GetAuthorizationToken"]]


def test_a_secret_in_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"environment.AGENT_API_KEY: looks like a secret; pass it in secrets"):
        FargateService("api", {**BASE, "command": ["x"], "environment": {"AGENT_API_KEY": "sk-123"}})


def test_a_health_port_without_traffic_gets_a_health_check_but_no_port_mapping() -> None:
    def program() -> None:
        FargateService("worker", {**BASE, "command": ["agent-app", "worker"], "health_check_port": 8001})

    plan = synthesize(program, stack="prod")
    worker = container(plan, "worker")
    assert "portMappings" not in worker
    check = worker["healthCheck"]
    assert check["command"][0] == "CMD-SHELL" and "curl" not in check["command"][1]
    assert check["command"][1] == ("python -c \"import urllib.request as u; "
                                   "u.urlopen('http://127.0.0.1:8001/healthz', timeout=4)\" || exit 1")
    assert check["timeout"] > 4
    assert not plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")


def test_a_raised_floor_without_a_restore_is_refused() -> None:
    from agent_infra.components.errors import ConfigError

    args = {**BASE, "command": ["agent-app", "worker"], "min_count": 1, "max_count": 5,
            "schedules": [{"name": "nightly", "cron": "0 1 * * *", "min_count": 3, "max_count": 5}]}
    with pytest.raises(ConfigError, match=r"schedules\.nightly: raises the floor above min_count \(1\)"):
        synthesize(lambda: FargateService("worker", args))
