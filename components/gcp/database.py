"""`Database`: Cloud SQL for PostgreSQL on a private IP only, TLS required, backups with
point-in-time recovery, the application database and user, and the user's password in Secret
Manager (read by the services as PGPASSWORD; the URL never carries it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from .secrets import Secrets

PASSWORD_ENV = "PGPASSWORD"


class DatabaseArgs(ComponentArgs):
    """Cloud SQL for PostgreSQL (pgvector is a built-in extension: `CREATE EXTENSION vector`).
    Cost: db-custom-1-3840 ZONAL about $50/month, REGIONAL doubles it; storage $0.17/GB-month;
    backups beyond the instance size $0.08/GB-month."""

    region: str
    """Region of the instance."""
    network_id: str | pulumi.Output[str]
    """VPC (`projects/P/global/networks/NAME`) with private services access; the instance gets a
    private IP there and no public IPv4 address."""
    password: str | pulumi.Output[str]
    """Password of the application user; pass a secret Output (`pulumi.Config().require_secret`)."""
    tier: str = "db-custom-1-3840"
    """Machine type (1 vCPU, 3.75 GB). `db-f1-micro` is cheaper but shared-core and outside the SLA."""
    database_version: str = "POSTGRES_16"
    """PostgreSQL major version. Changing it is an in-place major upgrade."""
    high_availability: bool = True
    """REGIONAL availability: a standby in another zone with automatic failover. False: ZONAL."""
    disk_size_gb: int = Field(10, ge=10, le=65_536)
    """Initial SSD size; storage grows automatically."""
    backup_retention_days: int = Field(7, ge=1, le=365)
    """Daily backups kept (count); point-in-time recovery keeps up to 7 days of logs within it."""
    deletion_protection: bool = True
    """Refuse deletion both in Pulumi and in the Cloud SQL API. Turn off only for throwaway stacks."""
    database_name: str = Field("agent", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    """Application database."""
    user_name: str = Field("agent", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    """Application user (a built-in PostgreSQL user, not the `postgres` superuser)."""
    accessors: Mapping[str, str | pulumi.Output[str]] = {}
    """Label -> IAM member allowed to read the password secret (that secret only)."""
    labels: dict[str, str] = {}
    """User labels on the instance and labels on the secret."""
    transforms: Mapping[Literal["database", "instance", "user"], Transform] = {}
    """Escape hatch per child role (`database`, `instance`, `user`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Database(pulumi.ComponentResource):
    """PostgreSQL reachable only from the VPC, over TLS."""

    private_ip: pulumi.Output[str]
    """The instance's private address."""
    connection_name: pulumi.Output[str]
    """`project:region:instance`, for the Cloud SQL Auth Proxy or connectors."""
    url: pulumi.Output[str]
    """`postgresql://agent@<ip>:5432/agent?ssl=require`: no password (it comes as PGPASSWORD).
    `ssl=` is asyncpg's parameter (the app's driver), not libpq's `sslmode=`."""
    password_secret: pulumi.Output[str]
    """Secret id holding the password (Cloud Run gives it to the app as PGPASSWORD)."""

    def __init__(self, name: str, args: DatabaseArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(DatabaseArgs, args, name)
        super().__init__("agent-infra:gcp:Database", name, None, opts)
        child = ChildFactory(self, args.transforms)
        self.instance = child(
            "instance", gcp.sql.DatabaseInstance, name, region=args.region,
            database_version=args.database_version, deletion_protection=args.deletion_protection,
            settings={
                "tier": args.tier,
                "edition": "ENTERPRISE",
                "availability_type": "REGIONAL" if args.high_availability else "ZONAL",
                "disk_size": args.disk_size_gb, "disk_type": "PD_SSD", "disk_autoresize": True,
                "deletion_protection_enabled": args.deletion_protection,
                "ip_configuration": {"ipv4_enabled": False, "private_network": args.network_id,
                                     "ssl_mode": "ENCRYPTED_ONLY"},
                "backup_configuration": {
                    "enabled": True, "point_in_time_recovery_enabled": True, "start_time": "03:00",
                    "transaction_log_retention_days": min(7, args.backup_retention_days),
                    "backup_retention_settings": {"retained_backups": args.backup_retention_days,
                                                  "retention_unit": "COUNT"}},
                "insights_config": {"query_insights_enabled": True},
                "user_labels": dict(args.labels),
            })
        self.database = child("database", gcp.sql.Database, f"{name}-database", name=args.database_name,
                              instance=self.instance.name)
        self.user = child("user", gcp.sql.User, f"{name}-user", name=args.user_name, instance=self.instance.name,
                          password=pulumi.Output.secret(args.password), type="BUILT_IN")
        self.secrets = Secrets(f"{name}-password", {
            "values": {PASSWORD_ENV: pulumi.Output.secret(args.password)}, "accessors": dict(args.accessors),
            "labels": dict(args.labels)}, pulumi.ResourceOptions(parent=self))
        self.private_ip = self.instance.private_ip_address
        self.connection_name = self.instance.connection_name
        self.url = self.private_ip.apply(
            lambda ip: f"postgresql://{args.user_name}@{ip}:5432/{args.database_name}?ssl=require")
        self.password_secret = self.secrets.refs[PASSWORD_ENV]
        self.register_outputs({"private_ip": self.private_ip, "connection_name": self.connection_name,
                               "url": self.url, "password_secret": self.password_secret})
