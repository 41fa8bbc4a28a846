"""Aurora PostgreSQL Serverless v2: encrypted, AWS-managed and rotated credentials, pgvector-ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from .iam import Grant

Value = str | pulumi.Output[str]
PORT = 5432


class DatabaseArgs(ComponentArgs):
    """Aurora PostgreSQL cluster on Serverless v2 capacity in private subnets.

    Cost: $0.12 per ACU-hour (0.5 ACU floor is about $44/month per instance), storage
    $0.10/GB-month, backups beyond the cluster's size billed. pgvector ships with Aurora PostgreSQL
    15.2+: the app runs `CREATE EXTENSION IF NOT EXISTS vector` on start.
    """

    vpc_id: Value
    subnet_ids: list[Value]
    """Private subnets in at least two AZs (an Aurora requirement)."""
    engine_version: str = "16.6"
    """Aurora PostgreSQL version (pgvector 0.8 from 16.6 on)."""
    database_name: str = Field("agent", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    master_username: str = Field("agent_admin", pattern=r"^[a-z][a-z0-9_]{0,15}$")
    min_capacity_acu: float = Field(0.5, ge=0, le=256)
    """Serverless v2 floor. 0 lets the cluster pause when idle (cold start about 15 s)."""
    max_capacity_acu: float = Field(4, ge=1, le=256)
    """Serverless v2 ceiling: the cost cap."""
    instance_count: int = Field(1, ge=1, le=15)
    """Writer plus readers. Production: 2 (a reader in another AZ to fail over to)."""
    backup_retention_days: int = Field(7, ge=1, le=35)
    deletion_protection: bool = False
    """Refuse deletion and take a final snapshot on destroy (production)."""
    kms_key_arn: Value | None = None
    """Customer-managed key for storage and the master secret. None: AWS-managed `aws/rds`."""
    performance_insights: bool = True
    """Performance Insights (7 days free)."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["cluster", "instance", "parameter_group", "security_group", "subnet_group"], Transform] = {}
    """Escape hatch per child role (`cluster`, `instance`, `parameter_group`, `security_group`, `subnet_group`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _capacity(self) -> DatabaseArgs:
        if self.min_capacity_acu > self.max_capacity_acu:
            raise ValueError(f"min_capacity_acu ({self.min_capacity_acu}) must not exceed max_capacity_acu "
                             f"({self.max_capacity_acu})")
        return self


class Database(pulumi.ComponentResource):
    """`cluster` (Aurora PostgreSQL), `instances` (db.serverless), `security_group` with no rules until
    a peer is allowed. The master password lives in an RDS-managed secret, rotated by AWS every 7 days."""

    endpoint: pulumi.Output[str]
    """Writer endpoint host name."""
    port: int
    database_name: str
    master_username: str
    secret_arn: pulumi.Output[str]
    """The RDS-managed master secret (JSON with `username` and `password`)."""
    cluster_identifier: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(DatabaseArgs, args, name)
        super().__init__("agent-infra:aws:Database", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        self.port, self.database_name, self.master_username = PORT, args.database_name, args.master_username
        self.security_group = child("security_group", aws.ec2.SecurityGroup, name, vpc_id=args.vpc_id,
                                    description=f"{name} database: ingress only from allowed services")
        self.security_group_id = self.security_group.id
        subnet_group = child("subnet_group", aws.rds.SubnetGroup, name, name=physical_name(name, 255).lower(),
                             subnet_ids=list(args.subnet_ids))
        major = args.engine_version.split(".")[0]
        parameters = child("parameter_group", aws.rds.ClusterParameterGroup, name,
                           family=f"aurora-postgresql{major}", description=f"{name}: TLS only, slow-query log",
                           parameters=[{"name": "rds.force_ssl", "value": "1"},
                                       {"name": "log_min_duration_statement", "value": "1000"}])
        identifier = physical_name(name, 63).lower()
        self.cluster = child(
            "cluster", aws.rds.Cluster, name, cluster_identifier=identifier, engine="aurora-postgresql",
            engine_mode="provisioned", engine_version=args.engine_version, database_name=args.database_name,
            master_username=args.master_username, manage_master_user_password=True,
            master_user_secret_kms_key_id=args.kms_key_arn, storage_encrypted=True, kms_key_id=args.kms_key_arn,
            serverlessv2_scaling_configuration={"min_capacity": args.min_capacity_acu,
                                                "max_capacity": args.max_capacity_acu},
            db_subnet_group_name=subnet_group.name, vpc_security_group_ids=[self.security_group.id],
            db_cluster_parameter_group_name=parameters.name, port=PORT,
            backup_retention_period=args.backup_retention_days, preferred_backup_window="03:00-04:00",
            copy_tags_to_snapshot=True, deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.deletion_protection,
            final_snapshot_identifier=f"{identifier}-final" if args.deletion_protection else None,
            iam_database_authentication_enabled=True, enabled_cloudwatch_logs_exports=["postgresql"],
            apply_immediately=not args.deletion_protection)
        self.instances = [child(
            "instance", aws.rds.ClusterInstance, f"{name}-{i}", identifier=f"{identifier}-{i}",
            cluster_identifier=self.cluster.id, instance_class="db.serverless", engine="aurora-postgresql",
            engine_version=self.cluster.engine_version, db_subnet_group_name=subnet_group.name,
            publicly_accessible=False, auto_minor_version_upgrade=True,
            performance_insights_enabled=args.performance_insights,
            performance_insights_kms_key_id=args.kms_key_arn if args.performance_insights else None)
            for i in range(args.instance_count)]
        self.endpoint = self.cluster.endpoint
        self.cluster_identifier = self.cluster.cluster_identifier
        self.cluster_arn = self.cluster.arn
        self.secret_arn = self.cluster.master_user_secrets.apply(lambda s: s[0]["secret_arn"] if s else "")
        self.register_outputs({"endpoint": self.endpoint, "secret_arn": self.secret_arn,
                               "cluster_arn": self.cluster_arn, "security_group_id": self.security_group_id})

    def url_without_password(self) -> pulumi.Output[str]:
        """`postgresql://<user>@<host>:5432/<db>?ssl=require`; the password arrives separately.
        `ssl=require` is asyncpg's spelling (the app's driver); libpq's `sslmode=` makes asyncpg
        refuse to connect at all (`unexpected keyword argument 'sslmode'`)."""
        return self.endpoint.apply(
            lambda host: f"postgresql://{self.master_username}@{host}:{PORT}/{self.database_name}?ssl=require")

    def grant_read_secret(self) -> list[Grant]:
        """Execution-role grant to inject the master password (plus decrypt when `kms_key_arn` is set)."""
        return [Grant(("secretsmanager:GetSecretValue",), (self.secret_arn,), "ReadDatabaseSecret")]
