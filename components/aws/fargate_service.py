"""One ECS Fargate service (API or worker): task definition, roles, security group, logs, autoscaling."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from ..app_env import http_health_check
from ..config import CLOUDWATCH_RETENTION_DAYS
from .iam import Grant, assume_role_policy, policy_document

Value = str | pulumi.Output[str]

# Fargate's valid CPU units -> allowed memory (MiB) range.
FARGATE_MEMORY = {256: (512, 2048), 512: (1024, 4096), 1024: (2048, 8192), 2048: (4096, 16384),
                  4096: (8192, 30720), 8192: (16384, 61440), 16384: (32768, 122880)}


class QueueBacklogScaling(ComponentArgs):
    """Scale on the queue's backlog per running task (the ECS counterpart of KEDA's queue scaler)."""

    queue_name: Value
    """SQS queue whose visible + in-flight messages are the backlog."""
    jobs_per_task: int = Field(5, ge=1)
    """Target backlog per task: desired tasks = ceil(backlog / jobs_per_task)."""


class ScheduledScaling(ComponentArgs):
    """A scheduled floor/ceiling (business hours, batch windows)."""

    name: str
    cron: str
    """Five-field cron (`0 8 * * 1-5`), converted to Application Auto Scaling's six-field form."""
    timezone: str = "UTC"
    min_count: int = Field(ge=0)
    max_count: int = Field(ge=1)


class FargateServiceArgs(ComponentArgs):
    """A Fargate service. Cost: per vCPU-hour ($0.032 arm64 / $0.040 x86 in us-east-1) and GB-hour;
    FARGATE_SPOT is up to 70% cheaper for interruptible workers."""

    cluster_name: Value
    cluster_arn: Value
    image: Value
    """Digest-pinned image reference."""
    command: list[str]
    """Container command (`["agent-app", "serve"]`, `["agent-app", "worker"]`)."""
    cpu: float = Field(0.5, ge=0.25, le=16)
    """vCPUs per task; rounded up to a Fargate size (0.25, 0.5, 1, 2, 4, 8, 16)."""
    memory_mb: int = Field(1024, ge=512, le=122_880)
    """MiB per task; raised to the CPU size's minimum when below it."""
    architecture: Literal["arm64", "x86_64"] = "arm64"
    """CPU architecture; arm64 (Graviton) is about 20% cheaper."""
    port: int | None = Field(None, ge=1024, le=65_535)
    """Container port for the load balancer. None: no inbound traffic at all (workers)."""
    health_check_path: str = "/healthz"
    """Liveness path the container health check calls on `health_check_port` (default `port`)."""
    health_check_port: int | None = Field(None, ge=1024, le=65_535)
    """Port of a health endpoint that takes no other traffic (the worker's `agent-app worker
    --health-port`): the container health check calls it on 127.0.0.1; no port mapping, no
    security group rule. None: `port`, and no health check when there is no port either."""
    environment: dict[str, Value] = {}
    """Plain settings only; names that look like secrets are refused."""
    secrets: dict[str, Value] = {}
    """Env var name -> Secrets Manager ARN (optionally `ARN:json-key::`), injected by ECS at start.
    The execution role must be granted read on them through `execution_grants`."""
    execution_grants: list[Any] = []
    """Grants (`agent_infra.components.aws.iam.Grant`) for the execution role: secrets, KMS key, ECR pull."""
    task_grants: list[Any] = []
    """Grants for the app itself (queue, tables, Bedrock...)."""
    vpc_id: Value
    subnet_ids: list[Value]
    """Private subnets; tasks never get a public IP."""
    egress_https_anywhere: bool = True
    """Allow outbound 443 to the internet (LLM APIs, AWS APIs through NAT). Other egress (Redis,
    PostgreSQL) is added per peer by the topology."""
    target_group_arn: Value | None = None
    """Register tasks with this ALB target group (needs `port`)."""
    request_count_resource_label: Value | None = None
    """`<alb arn suffix>/<target group arn suffix>`: enables request-count target tracking."""
    min_count: int = Field(1, ge=0, le=1_000)
    max_count: int = Field(4, ge=1, le=1_000)
    cpu_target_percent: int | None = Field(None, ge=10, le=95)
    """Target tracking on average CPU. None: off."""
    requests_per_target: int | None = Field(None, ge=1)
    """Target tracking on ALB requests per task per minute. None: off."""
    queue_backlog: QueueBacklogScaling | None = None
    """Backlog-per-task scaling (workers), plus a wake-up step when no task runs."""
    schedules: list[ScheduledScaling] = []
    """Scheduled scaling actions. An action only sets min/max at its time, so a schedule that raises
    the floor above `min_count` needs another that lowers it again (its restore); one without is
    refused, since the floor would stay raised after the first firing."""
    scale_in_protection: bool = False
    """Let the app protect its own task from scale-in while it runs a job (ECS task scale-in
    protection via `$ECS_AGENT_URI/task-protection/v1/state`); grants exactly that on this cluster's tasks."""
    capacity_provider: Literal["FARGATE", "FARGATE_SPOT"] = "FARGATE"
    """FARGATE_SPOT can be interrupted with two minutes' notice: fine for idempotent workers."""
    stop_timeout_seconds: int = Field(120, ge=2, le=120)
    """SIGTERM to SIGKILL: time to finish in-flight requests (Fargate's maximum is 120 s)."""
    read_only_root_filesystem: bool = True
    """Root filesystem read-only; `/tmp` is a writable task volume."""
    user: str | None = "10001:10001"
    """UID:GID the container runs as (never root). None: the image's USER."""
    log_retention_days: int = 30
    """Log group retention (a CloudWatch-allowed value)."""
    log_kms_key_arn: Value | None = None
    """Customer-managed key for the log group (its policy must admit CloudWatch Logs). None: AWS-managed."""
    health_check_grace_period_seconds: int = Field(60, ge=0, le=2_147_483_647)
    """Load balancer health checks ignored this long after a task starts."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["execution_role", "log_group", "scaling_policy", "scaling_target", "schedule", "security_group", "security_group_rule", "service", "task_definition", "task_role", "wake_alarm"], Transform] = {}
    """Escape hatch per child role (`execution_role`, `log_group`, `scaling_policy`, `scaling_target`, `schedule`, `security_group`, `security_group_rule`, `service`, `task_definition`, `task_role`, `wake_alarm`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            raise ValueError(f"must be a CloudWatch retention ({', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FargateServiceArgs:
        from ..config import SECRET_NAME_PATTERN

        for key in self.environment:
            if SECRET_NAME_PATTERN.search(key) and not key.endswith("_SECRET_ARN"):
                raise ValueError(f"environment.{key}: looks like a secret; pass it in secrets as an ARN")
        if self.min_count > self.max_count:
            raise ValueError(f"min_count ({self.min_count}) must not exceed max_count ({self.max_count})")
        if self.target_group_arn is not None and self.port is None:
            raise ValueError("target_group_arn needs port")
        for name in unrestored_raises([(s.name, s.min_count) for s in self.schedules], self.min_count):
            raise ValueError(f"schedules.{name}: raises the floor above min_count ({self.min_count}) and no schedule "
                             f"lowers it again; add one with min_count <= {self.min_count}")
        return self


def unrestored_raises(schedules: list[tuple[str, int]], floor: int) -> list[str]:
    """Names of (name, min) schedules that raise the floor above `floor` when none lowers it again."""
    if any(minimum <= floor for _, minimum in schedules):
        return []
    return [name for name, minimum in schedules if minimum > floor]


def fargate_size(cpu: float, memory_mb: int) -> tuple[int, int]:
    """Nearest valid Fargate (cpu units, memory MiB) at or above the request."""
    units = next(u for u in sorted(FARGATE_MEMORY) if u >= cpu * 1024)
    low, high = FARGATE_MEMORY[units]
    step = 1024 if units >= 1024 else 512
    memory = max(low, min(high, -(-memory_mb // step) * step))
    return units, memory


def aws_cron(cron: str) -> str:
    """Five-field cron -> Application Auto Scaling `cron(min hour dom month dow year)`.

    One of day-of-month/day-of-week must be `?`; AWS numbers weekdays 1-7 from Sunday, cron 0-6.
    """
    minute, hour, dom, month, dow = cron.split()
    if dow != "*":
        dom = "?"
        dow = re.sub(r"\d+", lambda m: str(int(m.group()) % 7 + 1), dow)
    else:
        dow = "?"
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


class FargateService(pulumi.ComponentResource):
    """`task_definition`, `service`, `security_group`, `log_group`, roles and scaling policies."""

    service_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    """The tasks' security group; peers (ALB, Redis, Aurora) reference it in their rules."""
    task_role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: FargateServiceArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(FargateServiceArgs, args, name)
        super().__init__("agent-infra:aws:FargateService", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        account = aws.get_caller_identity_output().account_id
        region = aws.get_region_output().region

        self.log_group = child("log_group", aws.cloudwatch.LogGroup, name,
                               name=f"/agent-infra/{pulumi.get_project()}/{pulumi.get_stack()}/{name}",
                               retention_in_days=args.log_retention_days, kms_key_id=args.log_kms_key_arn)
        self.log_group_name = self.log_group.name

        self.execution_role = child("execution_role", aws.iam.Role, f"{name}-execution",
                                    assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"))
        execution_grants: list[Grant] = [
            # GetAuthorizationToken has no resource-level permissions: AWS requires "*" for it alone.
            Grant(("ecr:GetAuthorizationToken",), ("*",), "EcrLogin"),
            Grant(("logs:CreateLogStream", "logs:PutLogEvents"),
                  (self.log_group.arn.apply(lambda a: f"{a}:log-stream:*"),), "WriteLogs"),
            *args.execution_grants]
        aws.iam.RolePolicy(f"{name}-execution", role=self.execution_role.id, policy=policy_document(execution_grants),
                           opts=pulumi.ResourceOptions(parent=self))

        self.task_role = child("task_role", aws.iam.Role, f"{name}-task",
                               assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"))
        task_grants: list[Grant] = list(args.task_grants)
        if args.scale_in_protection:
            task_grants.append(Grant(
                ("ecs:UpdateTaskProtection", "ecs:GetTaskProtection"),
                (pulumi.Output.all(region, account, args.cluster_name).apply(
                    lambda a: f"arn:aws:ecs:{a[0]}:{a[1]}:task/{a[2]}/*"),), "ProtectOwnTask"))
        if task_grants:
            aws.iam.RolePolicy(f"{name}-task", role=self.task_role.id, policy=policy_document(task_grants),
                               opts=pulumi.ResourceOptions(parent=self))
        self.task_role_arn = self.task_role.arn

        # Rules are separate resources (never inline) so peers can add theirs without a diff fight.
        self.security_group = child("security_group", aws.ec2.SecurityGroup, name, vpc_id=args.vpc_id,
                                    description=f"{name} tasks")
        if args.egress_https_anywhere:
            child("security_group_rule", aws.vpc.SecurityGroupEgressRule, f"{name}-https-out",
                  security_group_id=self.security_group.id, ip_protocol="tcp", from_port=443, to_port=443,
                  cidr_ipv4="0.0.0.0/0", description="HTTPS to AWS APIs and the LLM provider")
        self.security_group_id = self.security_group.id

        cpu_units, memory = fargate_size(args.cpu, args.memory_mb)
        container: dict[str, Any] = {
            "name": "app", "image": args.image, "command": list(args.command), "essential": True,
            "environment": [{"name": k, "value": v} for k, v in sorted(args.environment.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(args.secrets.items())],
            "readonlyRootFilesystem": args.read_only_root_filesystem,
            "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],
            # Fargate caps SIGTERM->SIGKILL at 120 s, below timeouts.run_seconds: a worker cannot
            # always finish its run, so it gets the whole cap, and an unfinished task returns to the
            # queue after its visibility timeout (scale-in protection keeps ECS from picking it).
            "stopTimeout": args.stop_timeout_seconds,
            "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
            "privileged": False,
            "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": self.log_group.name, "awslogs-region": region,
                "awslogs-stream-prefix": name, "mode": "non-blocking", "max-buffer-size": "4m"}},
        }
        if args.user is not None:
            container["user"] = args.user
        if args.port is not None:
            container["portMappings"] = [{"containerPort": args.port, "protocol": "tcp"}]
        health_port = args.health_check_port if args.health_check_port is not None else args.port
        if health_port is not None:
            probe = http_health_check(health_port, args.health_check_path, timeout_seconds=4)
            container["healthCheck"] = {"command": ["CMD-SHELL", probe], "interval": 15, "timeout": 5,
                                        "retries": 3, "startPeriod": 30}
        self.task_definition = child(
            "task_definition", aws.ecs.TaskDefinition, name, family=physical_name(name, 255),
            requires_compatibilities=["FARGATE"], network_mode="awsvpc", cpu=str(cpu_units), memory=str(memory),
            runtime_platform={"operating_system_family": "LINUX",
                              "cpu_architecture": "ARM64" if args.architecture == "arm64" else "X86_64"},
            execution_role_arn=self.execution_role.arn, task_role_arn=self.task_role.arn,
            volumes=[{"name": "tmp"}], container_definitions=pulumi.Output.json_dumps([container]))

        load_balancers = None
        if args.target_group_arn is not None:
            load_balancers = [{"target_group_arn": args.target_group_arn, "container_name": "app",
                               "container_port": args.port}]
        self.service = child(
            "service", aws.ecs.Service, name, name=physical_name(name, 255), cluster=args.cluster_arn,
            task_definition=self.task_definition.arn, desired_count=args.min_count,
            capacity_provider_strategies=[{"capacity_provider": args.capacity_provider, "weight": 1}],
            network_configuration={"subnets": list(args.subnet_ids), "security_groups": [self.security_group.id],
                                   "assign_public_ip": False},
            load_balancers=load_balancers,
            health_check_grace_period_seconds=args.health_check_grace_period_seconds if load_balancers else None,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            propagate_tags="SERVICE", enable_ecs_managed_tags=True, enable_execute_command=False,
            # Autoscaling owns the running count after the first deployment.
            opts=pulumi.ResourceOptions(ignore_changes=["desiredCount"]))
        self.service_name = self.service.name
        self._scaling(name, args, child)
        self.register_outputs({"service_name": self.service_name, "security_group_id": self.security_group_id,
                               "task_role_arn": self.task_role_arn, "log_group_name": self.log_group_name})

    def _scaling(self, name: str, args: FargateServiceArgs, child: ChildFactory) -> None:
        resource_id = pulumi.Output.all(args.cluster_name, self.service.name).apply(
            lambda a: f"service/{a[0]}/{a[1]}")
        self.scaling_target = child(
            "scaling_target", aws.appautoscaling.Target, f"{name}-scaling", service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount", resource_id=resource_id,
            min_capacity=args.min_count, max_capacity=args.max_count)
        common = {"service_namespace": "ecs", "scalable_dimension": "ecs:service:DesiredCount",
                  "resource_id": self.scaling_target.resource_id}
        self.scaling_policies: dict[str, aws.appautoscaling.Policy] = {}
        if args.cpu_target_percent is not None:
            self.scaling_policies["cpu"] = child(
                "scaling_policy", aws.appautoscaling.Policy, f"{name}-cpu", policy_type="TargetTrackingScaling",
                target_tracking_scaling_policy_configuration={
                    "target_value": args.cpu_target_percent, "scale_in_cooldown": 300, "scale_out_cooldown": 60,
                    "predefined_metric_specification": {"predefined_metric_type": "ECSServiceAverageCPUUtilization"}},
                **common)
        if args.requests_per_target is not None and args.request_count_resource_label is not None:
            self.scaling_policies["requests"] = child(
                "scaling_policy", aws.appautoscaling.Policy, f"{name}-requests", policy_type="TargetTrackingScaling",
                target_tracking_scaling_policy_configuration={
                    "target_value": args.requests_per_target, "scale_in_cooldown": 300, "scale_out_cooldown": 60,
                    "predefined_metric_specification": {"predefined_metric_type": "ALBRequestCountPerTarget",
                                                        "resource_label": args.request_count_resource_label}},
                **common)
        if args.queue_backlog is not None:
            self._backlog_scaling(name, args, args.queue_backlog, common, child)
        for schedule in args.schedules:
            child("schedule", aws.appautoscaling.ScheduledAction, f"{name}-{schedule.name}",
                  name=physical_name(f"{name}-{schedule.name}", 255), schedule=aws_cron(schedule.cron),
                  timezone=schedule.timezone, service_namespace="ecs", scalable_dimension="ecs:service:DesiredCount",
                  resource_id=self.scaling_target.resource_id,
                  scalable_target_action={"min_capacity": schedule.min_count, "max_capacity": schedule.max_count})

    def _backlog_scaling(self, name: str, args: FargateServiceArgs, backlog: QueueBacklogScaling,
                         common: dict[str, Any], child: ChildFactory) -> None:
        def stat(id_: str, namespace: str, metric: str, dims: dict[str, Value], statistic: str) -> dict[str, Any]:
            return {"id": id_, "return_data": False, "metric_stat": {"stat": statistic, "metric": {
                "namespace": namespace, "metric_name": metric,
                "dimensions": [{"name": k, "value": v} for k, v in dims.items()]}}}

        service_dims: dict[str, Value] = {"ClusterName": args.cluster_name, "ServiceName": self.service.name}
        queue_dims: dict[str, Value] = {"QueueName": backlog.queue_name}
        metrics = [
            stat("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue_dims, "Sum"),
            stat("inflight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue_dims, "Sum"),
            stat("tasks", "ECS/ContainerInsights", "RunningTaskCount", service_dims, "Average"),
            {"id": "backlog_per_task", "label": "Tasks queued or running per worker task", "return_data": True,
             "expression": "(FILL(visible, 0) + FILL(inflight, 0)) / IF(FILL(tasks, 0) > 0, tasks, 1)"}]
        self.scaling_policies["backlog"] = child(
            "scaling_policy", aws.appautoscaling.Policy, f"{name}-backlog", policy_type="TargetTrackingScaling",
            target_tracking_scaling_policy_configuration={
                "target_value": backlog.jobs_per_task, "scale_in_cooldown": 300, "scale_out_cooldown": 60,
                "customized_metric_specification": {"metrics": metrics}},
            **common)
        # Target tracking scales in proportion to the running count, so from zero it cannot start:
        # one step policy adds the first task when work waits and nothing runs.
        wake = child(
            "scaling_policy", aws.appautoscaling.Policy, f"{name}-wake", policy_type="StepScaling",
            step_scaling_policy_configuration={
                "adjustment_type": "ChangeInCapacity", "cooldown": 60, "metric_aggregation_type": "Maximum",
                "step_adjustments": [{"metric_interval_lower_bound": "0", "scaling_adjustment": 1}]},
            **common)
        self.scaling_policies["wake"] = wake

        def query(id_: str, namespace: str, metric: str, dims: dict[str, Value], statistic: str) -> dict[str, Any]:
            return {"id": id_, "return_data": False, "metric": {
                "namespace": namespace, "metric_name": metric, "dimensions": dims, "period": 60, "stat": statistic}}

        self.wake_alarm = child(
            "wake_alarm", aws.cloudwatch.MetricAlarm, f"{name}-wake",
            alarm_description="Tasks waiting and no worker running: start one",
            comparison_operator="GreaterThanOrEqualToThreshold", threshold=1, evaluation_periods=1,
            treat_missing_data="notBreaching",
            metric_queries=[
                query("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue_dims, "Maximum"),
                query("tasks", "ECS/ContainerInsights", "RunningTaskCount", service_dims, "Maximum"),
                {"id": "idle_with_work", "return_data": True, "label": "work waiting, no worker",
                 "expression": "IF(FILL(tasks, 0) < 1 AND FILL(visible, 0) > 0, 1, 0)"}],
            alarm_actions=[wake.arn])
