"""ElastiCache (Valkey) replication group for session state: encrypted at rest and in transit,
an AUTH token kept in Secrets Manager, failover and multi-AZ in production, snapshots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from .iam import Grant

Value = str | pulumi.Output[str]
PORT = 6379


class RedisArgs(ComponentArgs):
    """Valkey (Redis-compatible) replication group in private subnets.

    Cost: per node-hour (cache.t4g.micro about $11.50/month per node); snapshots beyond one day of
    retention are billed as backup storage. Valkey is about 20% cheaper than Redis OSS.
    """

    vpc_id: Value
    subnet_ids: list[Value]
    """Private subnets, one per AZ."""
    node_type: str = "cache.t4g.micro"
    """Node size. Changing it resizes online."""
    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: str = "8.0"
    node_count: int = Field(1, ge=1, le=6)
    """Primary plus replicas. Production: at least 2 (failover needs a replica)."""
    multi_az: bool = False
    """Automatic failover to a replica in another AZ (needs node_count >= 2). Production default."""
    snapshot_retention_days: int = Field(1, ge=0, le=35)
    """Daily snapshots kept. 0 disables snapshots."""
    kms_key_arn: Value | None = None
    """Customer-managed key for at-rest encryption and the AUTH secret. None: AWS-managed keys."""
    secret_recovery_window_days: int = Field(7, ge=0, le=30)
    """Days the AUTH-token secret can be restored after deletion."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["auth_secret", "auth_version", "replication_group", "security_group", "subnet_group"], Transform] = {}
    """Escape hatch per child role (`auth_secret`, `auth_version`, `replication_group`, `security_group`, `subnet_group`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _failover(self) -> RedisArgs:
        if self.multi_az and self.node_count < 2:
            raise ValueError(f"multi_az: needs node_count >= 2 (a replica to fail over to), got {self.node_count}; "
                             "set node_count: 2")
        return self


class Redis(pulumi.ComponentResource):
    """`replication_group`, its `security_group` (no rules until a peer is allowed) and the
    `auth_secret` holding `{"auth_token", "url"}`; the app gets AGENT_REDIS_URL from `url_secret_ref`."""

    primary_endpoint: pulumi.Output[str]
    """Primary endpoint host name."""
    port: int
    security_group_id: pulumi.Output[str]
    auth_secret_arn: pulumi.Output[str]
    url_secret_ref: pulumi.Output[str]
    """ECS `valueFrom` for the whole `rediss://:<token>@<host>:6379/0` URL (JSON key `url`)."""
    member_cluster_ids: list[pulumi.Output[str]]
    """Member cache cluster ids (`<group>-001`...), for per-node alarms."""

    def __init__(self, name: str, args: RedisArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(RedisArgs, args, name)
        super().__init__("agent-infra:aws:Redis", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        self.port = PORT
        self.security_group = child("security_group", aws.ec2.SecurityGroup, name, vpc_id=args.vpc_id,
                                    description=f"{name} cache: ingress only from allowed services")
        self.security_group_id = self.security_group.id
        subnet_group = child("subnet_group", aws.elasticache.SubnetGroup, name, name=physical_name(name, 255).lower(),
                             description=f"{name} private subnets", subnet_ids=list(args.subnet_ids))
        # A fresh random value every run; write-only arguments keep it out of state and out of
        # diffs, so it is set once at creation (bump the *_wo_version to rotate).
        token = aws.secretsmanager.get_random_password_output(password_length=64, exclude_punctuation=True)
        group_id = physical_name(name, 40).lower()
        self.replication_group = child(
            "replication_group", aws.elasticache.ReplicationGroup, name, replication_group_id=group_id,
            description=f"{name} session state", engine=args.engine, engine_version=args.engine_version,
            node_type=args.node_type, num_cache_clusters=args.node_count, port=PORT,
            automatic_failover_enabled=args.node_count > 1, multi_az_enabled=args.multi_az,
            at_rest_encryption_enabled=True, kms_key_id=args.kms_key_arn, transit_encryption_enabled=True,
            auth_token_wo=pulumi.Output.secret(token.random_password), auth_token_wo_version=1,
            subnet_group_name=subnet_group.name, security_group_ids=[self.security_group.id],
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window="02:00-03:00" if args.snapshot_retention_days else None,
            final_snapshot_identifier=f"{group_id}-final" if args.snapshot_retention_days else None,
            auto_minor_version_upgrade=True, apply_immediately=False)
        self.primary_endpoint = self.replication_group.primary_endpoint_address
        self.member_cluster_ids = [pulumi.Output.from_input(f"{group_id}-{i + 1:03d}") for i in range(args.node_count)]
        self.auth_secret = child("auth_secret", aws.secretsmanager.Secret, f"{name}-auth",
                                 name=physical_name(f"{name}-auth", 256, "/"),
                                 description=f"{name} AUTH token and connection URL", kms_key_id=args.kms_key_arn,
                                 recovery_window_in_days=args.secret_recovery_window_days)
        value = pulumi.Output.all(token.random_password, self.primary_endpoint).apply(
            lambda a: json.dumps({"auth_token": a[0], "url": f"rediss://:{a[0]}@{a[1]}:{PORT}/0"}))
        child("auth_version", aws.secretsmanager.SecretVersion, f"{name}-auth", secret_id=self.auth_secret.id,
              secret_string_wo=pulumi.Output.secret(value), secret_string_wo_version=1)
        self.auth_secret_arn = self.auth_secret.arn
        self.url_secret_ref = self.auth_secret.arn.apply(lambda arn: f"{arn}:url::")
        self.register_outputs({"primary_endpoint": self.primary_endpoint, "auth_secret_arn": self.auth_secret_arn,
                               "security_group_id": self.security_group_id})

    def grant_read_secret(self, kms_key_arn: Value | None = None) -> list[Grant]:
        """Execution-role grants to inject the URL secret (plus decrypt if a CMK is used)."""
        grants = [Grant(("secretsmanager:GetSecretValue",), (self.auth_secret_arn,), "ReadRedisAuth")]
        if kms_key_arn is not None:
            grants.append(Grant(("kms:Decrypt",), (kms_key_arn,), "DecryptRedisAuth"))
        return grants
