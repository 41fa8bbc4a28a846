"""Database block on the offline plan: encrypted Aurora with an RDS-managed master password, deletion
protection and a final snapshot only when asked, backup retention from args, TLS forced, private instances."""

from __future__ import annotations

import pytest
from agent_infra.components.aws import Database
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        base = {"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"]}
        Database("dev-db", base)
        Database("prod-db", {**base, "deletion_protection": True, "backup_retention_days": 14, "instance_count": 2,
                             "min_capacity_acu": 1, "max_capacity_acu": 8})
    return synthesize(program, stack="prod")


def test_production_is_protected_and_snapshots_on_destroy(plan: Plan) -> None:
    prod = plan.one(CLUSTER, "prod-db").inputs
    assert (prod["deletionProtection"], prod["skipFinalSnapshot"]) == (True, False)
    assert prod["finalSnapshotIdentifier"] == "agent-infra-prod-prod-db-final"
    assert prod["applyImmediately"] is False
    dev = plan.one(CLUSTER, "dev-db").inputs
    assert (dev["deletionProtection"], dev["skipFinalSnapshot"]) == (False, True)
    assert "finalSnapshotIdentifier" not in dev


def test_backup_retention_follows_args(plan: Plan) -> None:
    assert plan.one(CLUSTER, "prod-db").inputs["backupRetentionPeriod"] == 14
    assert plan.one(CLUSTER, "dev-db").inputs["backupRetentionPeriod"] == 7


@pytest.mark.parametrize("name", ["dev-db", "prod-db"])
def test_encrypted_with_a_managed_master_password(plan: Plan, name: str) -> None:
    cluster = plan.one(CLUSTER, name).inputs
    assert cluster["storageEncrypted"] is True
    assert cluster["manageMasterUserPassword"] is True
    assert "masterPassword" not in cluster
    assert (cluster["engine"], cluster["engineVersion"], cluster["masterUsername"]) == (
        "aurora-postgresql", "16.6", "agent_admin")
    assert cluster["iamDatabaseAuthenticationEnabled"] is True


def test_tls_is_forced_by_the_parameter_group(plan: Plan) -> None:
    group = plan.one("aws:rds/clusterParameterGroup:ClusterParameterGroup", "prod-db").inputs
    assert group["family"] == "aurora-postgresql16"
    assert {"name": "rds.force_ssl", "value": "1"} in group["parameters"]
    assert plan.one(CLUSTER, "prod-db").inputs["dbClusterParameterGroupName"] == \
        plan.one("aws:rds/clusterParameterGroup:ClusterParameterGroup", "prod-db").outputs["name"]


def test_serverless_instances_are_private(plan: Plan) -> None:
    instances = sorted(r.name for r in plan.of_type(INSTANCE) if r.name.startswith("prod-db-"))
    assert instances == ["prod-db-0", "prod-db-1"]
    for name in instances:
        inputs = plan.one(INSTANCE, name).inputs
        assert (inputs["instanceClass"], inputs["publiclyAccessible"]) == ("db.serverless", False)
    scaling = plan.one(CLUSTER, "prod-db").inputs["serverlessv2ScalingConfiguration"]
    assert (scaling["minCapacity"], scaling["maxCapacity"]) == (1, 8)


def test_min_capacity_above_max_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"min_capacity_acu \(8.0\) must not exceed max_capacity_acu \(4\)"):
        Database("db", {"vpc_id": "vpc-1", "subnet_ids": ["a", "b"], "min_capacity_acu": 8})
