"""Redis block on the offline plan: encryption flags as booleans, failover only when asked, the AUTH token
kept out of plain state, snapshots."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.aws import Redis
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SUBNETS = ["subnet-a", "subnet-b"]
KEY = "arn:aws:kms:us-east-1:123456789012:key/cache"


@pytest.fixture(scope="module")
def plan() -> Plan:
    """A development group (defaults) and a production-shaped one (2 nodes, multi-AZ, CMK, 7-day snapshots)."""
    def program() -> None:
        Redis("dev-cache", {"vpc_id": "vpc-1", "subnet_ids": SUBNETS})
        Redis("prod-cache", {"vpc_id": "vpc-1", "subnet_ids": SUBNETS, "node_count": 2, "multi_az": True,
                             "snapshot_retention_days": 7, "kms_key_arn": KEY})
    return synthesize(program, stack="prod")


@pytest.mark.parametrize("name", ["dev-cache", "prod-cache"])
def test_encryption_flags_are_booleans(plan: Plan, name: str) -> None:
    group = plan.one(GROUP, name).inputs
    # The SDK types both as bool; a string "true" only passed because the provider coerces it.
    assert group["atRestEncryptionEnabled"] is True
    assert group["transitEncryptionEnabled"] is True


def test_failover_and_multi_az_only_when_asked(plan: Plan) -> None:
    dev, prod = plan.one(GROUP, "dev-cache").inputs, plan.one(GROUP, "prod-cache").inputs
    assert (dev["numCacheClusters"], dev["automaticFailoverEnabled"], dev["multiAzEnabled"]) == (1, False, False)
    assert (prod["numCacheClusters"], prod["automaticFailoverEnabled"], prod["multiAzEnabled"]) == (2, True, True)
    assert prod["kmsKeyId"] == KEY and "kmsKeyId" not in dev
    assert (dev["engine"], dev["engineVersion"], dev["port"]) == ("valkey", "8.0", 6379)


def test_auth_token_never_in_plain_state(plan: Plan) -> None:
    group = plan.one(GROUP, "prod-cache").inputs
    assert group["authTokenWo"] == "[secret]" and group["authTokenWoVersion"] == 1
    assert "authToken" not in group
    version = plan.one("aws:secretsmanager/secretVersion:SecretVersion", "prod-cache-auth").inputs
    assert version["secretStringWo"] == "[secret]" and "secretString" not in version
    secret = plan.one("aws:secretsmanager/secret:Secret", "prod-cache-auth")
    assert secret.inputs["kmsKeyId"] == KEY
    # The token's random value appears nowhere in the recorded plan.
    assert "rediss://" not in json.dumps([r.inputs for r in plan])


def test_snapshots_follow_retention(plan: Plan) -> None:
    prod = plan.one(GROUP, "prod-cache").inputs
    assert prod["snapshotRetentionLimit"] == 7 and prod["snapshotWindow"] == "02:00-03:00"
    assert prod["finalSnapshotIdentifier"] == "agent-infra-prod-prod-cache-final"
    assert plan.one(GROUP, "dev-cache").inputs["snapshotRetentionLimit"] == 1


def test_security_group_has_no_rules_until_a_peer_is_allowed(plan: Plan) -> None:
    sg = plan.one("aws:ec2/securityGroup:SecurityGroup", "prod-cache")
    assert plan.one(GROUP, "prod-cache").inputs["securityGroupIds"] == [sg.id]
    component = plan.one("agent-infra:aws:Redis", "prod-cache")
    assert not [r for r in plan.children(component) if r.type.startswith("aws:vpc/securityGroup")]


def test_multi_az_without_replica_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"multi_az: needs node_count >= 2 .* set node_count: 2"):
        Redis("cache", {"vpc_id": "vpc-1", "subnet_ids": SUBNETS, "multi_az": True})
