"""Backup block on the offline plan: a daily plan with the configured retention, selection of the
given resources, vault lock only in production, failure notifications."""

from __future__ import annotations

import pytest
from agent_infra.components.aws import Backup
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

DB = "arn:aws:rds:us-east-1:123456789012:cluster:agent-db"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/sessions"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        Backup("prod-backup", {"resource_arns": [DB, TABLE], "retention_days": 30, "vault_lock": True,
                               "alarm_topic_arn": TOPIC, "tags": {"stack": "prod"}})
        Backup("dev-backup", {"resource_arns": [TABLE]})
    return synthesize(program, stack="prod")


def test_daily_rule_keeps_points_for_retention_days(plan: Plan) -> None:
    rule = plan.one("aws:backup/plan:Plan", "prod-backup").inputs["rules"][0]
    assert (rule["ruleName"], rule["schedule"]) == ("daily", "cron(0 3 * * ? *)")
    assert rule["lifecycle"] == {"deleteAfter": 30}
    assert rule["targetVaultName"] == "agent-infra-prod-prod-backup"
    assert plan.one("aws:backup/vault:Vault", "prod-backup").inputs["name"] == "agent-infra-prod-prod-backup"
    assert rule["recoveryPointTags"] == {"stack": "prod"}
    assert plan.one("aws:backup/plan:Plan", "dev-backup").inputs["rules"][0]["lifecycle"] == {"deleteAfter": 35}


def test_selection_covers_exactly_the_given_resources(plan: Plan) -> None:
    selection = plan.one("aws:backup/selection:Selection", "prod-backup-selection").inputs
    assert selection["resources"] == [DB, TABLE]
    assert selection["planId"] == plan.one("aws:backup/plan:Plan", "prod-backup").id
    assert selection["iamRoleArn"] == plan.one("aws:iam/role:Role", "prod-backup-role").outputs["arn"]
    attached = sorted(r.inputs["policyArn"] for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                      if r.name.startswith("prod-backup-"))
    assert attached == ["arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
                        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"]


def test_vault_lock_only_when_asked(plan: Plan) -> None:
    locks = plan.of_type("aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    assert [lock.name for lock in locks] == ["prod-backup-lock"]
    assert (locks[0].inputs["minRetentionDays"], locks[0].inputs["maxRetentionDays"]) == (7, 365)


def test_failed_jobs_notify_the_topic(plan: Plan) -> None:
    notifications = plan.of_type("aws:backup/vaultNotifications:VaultNotifications")
    assert [n.name for n in notifications] == ["prod-backup-notifications"]
    assert notifications[0].inputs["snsTopicArn"] == TOPIC
    assert notifications[0].inputs["backupVaultEvents"] == ["BACKUP_JOB_FAILED", "RESTORE_JOB_FAILED",
                                                            "COPY_JOB_FAILED"]


def test_nothing_to_back_up_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"resource_arns: nothing to back up"):
        Backup("b", {"resource_arns": []})
