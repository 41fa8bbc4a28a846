"""Shared vocabulary of the rules: type tokens, the registry decorators and property helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..engine import UNKNOWN, Level, Resource, Rule, dig, is_unknown, json_value

# --- Type tokens ---------------------------------------------------------------------------------
LAMBDA = "aws:lambda/function:Function"
LAMBDA_URL = "aws:lambda/functionUrl:FunctionUrl"
EVENT_SOURCE_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
SQS_QUEUE = "aws:sqs/queue:Queue"
SQS_REDRIVE = "aws:sqs/redrivePolicy:RedrivePolicy"
DYNAMODB_TABLE = "aws:dynamodb/table:Table"
HTTP_API = "aws:apigatewayv2/api:Api"
HTTP_STAGE = "aws:apigatewayv2/stage:Stage"
HTTP_INTEGRATION = "aws:apigatewayv2/integration:Integration"
LOAD_BALANCERS = frozenset({"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"})
TARGET_GROUPS = frozenset({"aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"})
LISTENERS = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
ECS_TASK = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
REDIS_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
S3_BUCKETS = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
S3_ENCRYPTION = frozenset({
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
})
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY_DOCUMENTS = frozenset({
    "aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
})
IAM_ATTACHMENTS = frozenset({
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment", "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
})
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
AWS_BUDGET = "aws:budgets/budget:Budget"
SECRETSMANAGER_SECRET = "aws:secretsmanager/secret:Secret"

K8S_WORKLOADS = frozenset({
    "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob", "kubernetes:core/v1:Pod",
})
K8S_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
K8S_INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"

CLOUD_RUN_SERVICE = "gcp:cloudrunv2/service:Service"
CLOUD_RUN_JOB = "gcp:cloudrunv2/job:Job"
PUBSUB_SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
CLOUD_SQL = "gcp:sql/databaseInstance:DatabaseInstance"
MEMORYSTORE = "gcp:redis/instance:Instance"
GCP_BUDGET = "gcp:billing/budget:Budget"

DOCKER_CONTAINER = "docker:index/container:Container"

CONTAINER_TYPES = K8S_WORKLOADS | {ECS_TASK, CLOUD_RUN_SERVICE, CLOUD_RUN_JOB, DOCKER_CONTAINER}


# --- Registry ------------------------------------------------------------------------------------

def resource_rule(registry: list[Rule], *, name: str, description: str, remediation: str, level: Level,
                  area: str, types: Iterable[str] | None, config: Mapping[str, Mapping[str, Any]] | None = None,
                  severity: str = "medium", fixes: Mapping[str, str] | None = None,
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a per-resource check: `fn(resource, ctx)` yields messages or `Finding`s.
    `fixes` maps a type token to the remediation for that kind of resource."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        registry.append(Rule(name=name, description=description, remediation=remediation, level=level, area=area,
                             kind="resource", check=fn, types=frozenset(types) if types is not None else None,
                             config=dict(config or {}), severity=severity,  # type: ignore[arg-type]
                             fixes=dict(fixes or {})))
        return fn
    return wrap


def stack_rule(registry: list[Rule], *, name: str, description: str, remediation: str, level: Level, area: str,
               config: Mapping[str, Mapping[str, Any]] | None = None, severity: str = "medium",
               fixes: Mapping[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a whole-stack check: `fn(resources, ctx)` yields `Finding`s (with `urn`)."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        registry.append(Rule(name=name, description=description, remediation=remediation, level=level, area=area,
                             kind="stack", check=fn, config=dict(config or {}), severity=severity,  # type: ignore[arg-type]
                             fixes=dict(fixes or {})))
        return fn
    return wrap


# --- Helpers -------------------------------------------------------------------------------------

def of_type(resources: Sequence[Resource], types: str | Iterable[str]) -> list[Resource]:
    wanted = {types} if isinstance(types, str) else set(types)
    return [r for r in resources if r.type in wanted]


def as_list(value: Any) -> list[Any]:
    """A list property, or [] if absent or unknown."""
    return list(value) if isinstance(value, list) else []


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float | None:
    """A numeric property (numbers arrive as floats, and sometimes as text); None if absent/unknown."""
    if isinstance(value, bool) or value is None or is_unknown(value):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(str(value).rstrip("s"))
    except ValueError:
        return None


def fmt(value: float | None) -> str:
    if value is None:
        return "unset"
    return str(int(value)) if float(value).is_integer() else str(value)


def dependents(resources: Sequence[Resource], target: Resource, types: str | Iterable[str]) -> list[Resource]:
    """Resources of `types` that depend on `target` (reference one of its outputs)."""
    return [r for r in of_type(resources, types) if target.urn in r.dependencies]


def references(resource: Resource, target: Resource, *values: Any) -> bool:
    """Does `resource` refer to `target`, by dependency or by one of `values` being one of the
    target's identifiers (the same ARN or name text)? Dependencies are what the engine records;
    the values cover programs that pass literal ARNs."""
    if target.urn in resource.dependencies:
        return True
    ids = {v for v in (target.get("arn"), target.get("name"), target.get("id")) if isinstance(v, str) and v != UNKNOWN}
    return any(isinstance(v, str) and v in ids for v in values)


def resource_tags(resource: Resource, key: str = "tags") -> Mapping[str, Any] | None:
    """The resource's tags (labels on GCP) merged over the provider's default tags; None if unknown."""
    own = resource.get(key)
    if is_unknown(own):
        return None
    default = dig(resource.provider_props, "defaultTags")
    if isinstance(default, str):
        default = json_value(default)
    default_tags = as_dict(dig(default, "tags")) if not is_unknown(default) else {}
    labels = resource.provider_props.get("defaultLabels") if key == "labels" else None
    if isinstance(labels, str):
        labels = json_value(labels)
    # Under the CLI, stack policies see outputs, where `tagsAll` / `effectiveLabels` already
    # include the provider's defaults.
    merged = resource.get("tagsAll" if key == "tags" else "effectiveLabels")
    return {**default_tags, **as_dict(labels), **as_dict(merged if not is_unknown(merged) else {}), **as_dict(own)}


def present(value: Any) -> bool:
    """Set (or unknown). Providers report an unset string attribute as "" in a resource's outputs,
    which stack policies see under the CLI."""
    return value is not None and value != ""


def environment_of(resource: Resource, ctx: Any) -> str | None:
    """The deployment environment: the policy's `environment` setting, else the resource's
    `environment` tag or label, else the stack's `environment` tag."""
    configured = ctx.config.get("environment")
    if configured:
        return str(configured)
    for key in ("tags", "labels"):
        tags = resource_tags(resource, key) or {}
        if isinstance(tags.get("environment"), str):
            return str(tags["environment"])
    settings_labels = as_dict(resource.get("settings.userLabels"))
    if isinstance(settings_labels.get("environment"), str):
        return str(settings_labels["environment"])
    return ctx.stack_tags.get("environment")


def is_production(resource: Resource, ctx: Any) -> bool:
    env = environment_of(resource, ctx)
    return env is not None and env in ctx.config.get("productionEnvironments", ["prod", "production"])


PRODUCTION_CONFIG: dict[str, dict[str, Any]] = {
    "environment": {"type": "string", "default": "",
                    "description": "Environment of the stack; empty: read the resource's `environment` tag."},
    "productionEnvironments": {"type": "array", "items": {"type": "string"}, "default": ["prod", "production"],
                               "description": "Environment names that count as production."},
}


# --- Containers ------------------------------------------------------------------------------------

class Container:
    """One container of a workload, whatever the platform."""

    def __init__(self, label: str, spec: Mapping[str, Any], platform: str,
                 pod_security: Mapping[str, Any] | None = None) -> None:
        self.label = label
        self.spec = spec
        self.platform = platform
        self.pod_security = pod_security or {}

    def get(self, path: str, default: Any = None) -> Any:
        return dig(self.spec, path, default)


def _pod_spec(resource: Resource) -> Any:
    kind = resource.type.rsplit(":", 1)[-1]
    path = {"Pod": "spec", "CronJob": "spec.jobTemplate.spec.template.spec"}.get(kind, "spec.template.spec")
    return resource.get(path)


def containers(resource: Resource) -> Iterator[Container]:
    """Containers of a Kubernetes workload, ECS task definition, Cloud Run service/job or Docker container.
    Containers whose definition is unknown during preview are skipped."""
    if resource.type in K8S_WORKLOADS:
        pod = _pod_spec(resource)
        if not isinstance(pod, Mapping):
            return
        for spec in as_list(pod.get("containers")):
            if isinstance(spec, Mapping):
                yield Container(f"container {spec.get('name', '?')!r}", spec, "kubernetes",
                                as_dict(pod.get("securityContext")))
    elif resource.type == ECS_TASK:
        for spec in as_list(json_value(resource.get("containerDefinitions"))):
            if isinstance(spec, Mapping):
                yield Container(f"container {spec.get('name', '?')!r}", spec, "ecs")
    elif resource.type in (CLOUD_RUN_SERVICE, CLOUD_RUN_JOB):
        path = "template.containers" if resource.type == CLOUD_RUN_SERVICE else "template.template.containers"
        for index, spec in enumerate(as_list(resource.get(path))):
            if isinstance(spec, Mapping):
                yield Container(f"container {spec.get('name') or index!r}", spec, "cloudrun")
    elif resource.type == DOCKER_CONTAINER:
        yield Container("container", resource.props, "docker")


def for_types(types: Iterable[str], fix: str) -> dict[str, str]:
    """The same remediation for several type tokens (for a rule's `fixes`)."""
    return dict.fromkeys(types, fix)
