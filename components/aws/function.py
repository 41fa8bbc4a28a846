"""A Lambda function with its own log group (retention), least-privilege role and X-Ray tracing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from ..errors import ConfigError
from .iam import Grant, assume_role_policy, policy_document

XRAY_POLICY_ARN = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"


class AgentFunctionArgs(ComponentArgs):
    """One Lambda function. Cost: per request and GB-second; $0 idle."""

    code: pulumi.Archive | None = None
    """The deployment bundle (.zip archive). Exactly one of `code` and `image_uri`."""
    image_uri: str | pulumi.Output[str] | None = None
    """A container image in ECR instead of a zip bundle."""
    handler: str = "agent_app.lambda_handler.handler"
    """Module.function entry point (zip bundles only)."""
    runtime: str = "python3.12"
    """Lambda runtime (zip bundles only)."""
    architecture: Literal["arm64", "x86_64"] = "arm64"
    """arm64 (Graviton) costs about 20% less per GB-second."""
    memory_mb: int = Field(1024, ge=128, le=10_240)
    """Memory, MiB; CPU scales with it."""
    timeout_seconds: int = Field(300, ge=1, le=900)
    """Hard limit of one invocation."""
    reserved_concurrency: int | None = Field(None, ge=0, le=10_000)
    """Cap on concurrent executions. None: the account's unreserved pool."""
    environment: Mapping[str, Any] = {}
    """Environment variables (plain settings and secret ARNs, never secret values)."""
    grants: Sequence[Grant] = ()
    """Exactly what the function may do, beyond writing its own logs."""
    log_retention_days: int = 30
    """Retention of the function's log group."""
    tracing: bool = True
    """Active X-Ray tracing."""
    kms_key_arn: str | pulumi.Output[str] | None = None
    """Customer-managed key for the environment variables at rest and the log group. Its key
    policy must let CloudWatch Logs use it (`agent_infra.components.aws.secrets.key_policy` does); the role
    gets `kms:Decrypt` on it. None: AWS-managed keys."""
    code_signing_config_arn: str | pulumi.Output[str] | None = None
    """Lambda code-signing config: deployments must be signed by its AWS Signer profiles. Needs a
    signed bundle (sign `agent-infra build`'s zip with `aws signer start-signing-job`). None: off."""
    tags: dict[str, str] = {}
    transforms: Mapping[Literal["function", "log_group", "policy", "role", "xray"], Transform] = {}
    """Escape hatch per child role (`function`, `log_group`, `policy`, `role`, `xray`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class AgentFunction(pulumi.ComponentResource):
    """Lambda + role + inline policy naming exact ARNs + log group with retention."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    invoke_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: AgentFunctionArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(AgentFunctionArgs, args, name)
        if (args.code is None) == (args.image_uri is None):
            raise ConfigError(f"{name}: set exactly one of code (a zip bundle) and image_uri")
        super().__init__("agent-infra:aws:AgentFunction", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        function_name = physical_name(name, 64)
        # The log group is created (not left to Lambda) so it has a retention and a known ARN.
        self.log_group = child("log_group", aws.cloudwatch.LogGroup, f"{name}-logs",
                               name=f"/aws/lambda/{function_name}", retention_in_days=args.log_retention_days,
                               kms_key_id=args.kms_key_arn)
        self.role = child("role", aws.iam.Role, f"{name}-role",
                          assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
                          description=f"Runs the {name} function; permissions listed in its inline policy")
        log_grant = Grant(("logs:CreateLogStream", "logs:PutLogEvents"),
                          (self.log_group.arn.apply(lambda arn: f"{arn}:*"),), "WriteOwnLogs")
        grants = [log_grant, *args.grants]
        if args.kms_key_arn is not None:
            grants.append(Grant(("kms:Decrypt",), (args.kms_key_arn,), "DecryptEnvironment"))
        self.policy = child("policy", aws.iam.RolePolicy, f"{name}-policy", role=self.role.id,
                            policy=policy_document(grants))
        depends: list[pulumi.Resource] = [self.policy, self.log_group]
        if args.tracing:
            # X-Ray's write actions do not support resource-level permissions; the managed
            # policy keeps that unavoidable `*` resource out of our own inline policy.
            depends.append(child("xray", aws.iam.RolePolicyAttachment, f"{name}-xray", role=self.role.name,
                                 policy_arn=XRAY_POLICY_ARN))
        package: dict[str, Any] = (
            {"package_type": "Image", "image_uri": args.image_uri} if args.image_uri is not None
            else {"package_type": "Zip", "code": args.code, "handler": args.handler, "runtime": args.runtime})
        self.function = child(
            "function", aws.lambda_.Function, name,
            opts=pulumi.ResourceOptions(depends_on=depends),
            name=function_name,
            role=self.role.arn,
            architectures=[args.architecture],
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            reserved_concurrent_executions=args.reserved_concurrency,
            environment={"variables": dict(args.environment)} if args.environment else None,
            tracing_config={"mode": "Active" if args.tracing else "PassThrough"},
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            kms_key_arn=args.kms_key_arn, code_signing_config_arn=args.code_signing_config_arn,
            **package)
        self.arn, self.name, self.invoke_arn = self.function.arn, self.function.name, self.function.invoke_arn
        self.role_arn, self.log_group_name = self.role.arn, self.log_group.name
        self.register_outputs({"arn": self.arn, "name": self.name, "role_arn": self.role_arn,
                               "log_group_name": self.log_group_name})
