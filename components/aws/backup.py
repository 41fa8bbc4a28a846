"""AWS Backup: an encrypted vault, a daily plan and a selection of the database and tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from .iam import assume_role_policy

Value = str | pulumi.Output[str]


class BackupArgs(ComponentArgs):
    """Backup plan for the deployment's stateful resources.

    Cost: warm backup storage about $0.05/GB-month (Aurora, DynamoDB); restores billed per GB.
    """

    resource_arns: list[Value]
    """ARNs to back up: the Aurora cluster, DynamoDB tables."""
    retention_days: int = Field(35, ge=1, le=36_500)
    """Days each recovery point is kept."""
    schedule: str = "cron(0 3 * * ? *)"
    """AWS Backup schedule expression (daily at 03:00 UTC)."""
    kms_key_arn: Value | None = None
    """Vault key. None: the account's `aws/backup` key."""
    vault_lock: bool = False
    """Governance-mode vault lock: recovery points cannot be deleted before `retention_days`
    (production). Governance mode can still be lifted by an administrator."""
    alarm_topic_arn: Value | None = None
    """SNS topic notified of failed backup and restore jobs."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["notifications", "plan", "role", "selection", "vault", "vault_lock"], Transform] = {}
    """Escape hatch per child role (`notifications`, `plan`, `role`, `selection`, `vault`, `vault_lock`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _something(self) -> BackupArgs:
        if not self.resource_arns:
            raise ValueError("resource_arns: nothing to back up; pass the database and table ARNs")
        return self


class Backup(pulumi.ComponentResource):
    """`vault`, `plan`, `selection` and the service `role` AWS Backup assumes."""

    vault_name: pulumi.Output[str]
    plan_id: pulumi.Output[str]

    def __init__(self, name: str, args: BackupArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(BackupArgs, args, name)
        super().__init__("agent-infra:aws:Backup", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        self.vault = child("vault", aws.backup.Vault, name, name=physical_name(name, 50), kms_key_arn=args.kms_key_arn)
        if args.vault_lock:
            child("vault_lock", aws.backup.VaultLockConfiguration, f"{name}-lock",
                  backup_vault_name=self.vault.name, min_retention_days=min(args.retention_days, 7),
                  max_retention_days=max(args.retention_days, 365))
        if args.alarm_topic_arn is not None:
            child("notifications", aws.backup.VaultNotifications, f"{name}-notifications",
                  backup_vault_name=self.vault.name, sns_topic_arn=args.alarm_topic_arn,
                  backup_vault_events=["BACKUP_JOB_FAILED", "RESTORE_JOB_FAILED", "COPY_JOB_FAILED"])
        self.plan = child("plan", aws.backup.Plan, name, name=physical_name(name, 50), rules=[{
            "rule_name": "daily", "target_vault_name": self.vault.name, "schedule": args.schedule,
            "start_window": 60, "completion_window": 360, "lifecycle": {"delete_after": args.retention_days},
            "recovery_point_tags": args.tags or None}])
        role = child("role", aws.iam.Role, f"{name}-role", assume_role_policy=assume_role_policy("backup.amazonaws.com"))
        for policy in ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"):
            aws.iam.RolePolicyAttachment(f"{name}-{policy[len('AWSBackupServiceRolePolicyFor'):].lower()}",
                                         role=role.name, opts=pulumi.ResourceOptions(parent=self),
                                         policy_arn=f"arn:aws:iam::aws:policy/service-role/{policy}")
        child("selection", aws.backup.Selection, f"{name}-selection", name=physical_name(name, 50),
              plan_id=self.plan.id, iam_role_arn=role.arn, resources=list(args.resource_arns))
        self.vault_name, self.plan_id = self.vault.name, self.plan.id
        self.register_outputs({"vault_name": self.vault_name, "plan_id": self.plan_id})
