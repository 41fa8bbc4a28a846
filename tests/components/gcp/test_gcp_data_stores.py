"""Redis, Database, Secrets and Network on their own: private, encrypted, per-secret grants."""

from __future__ import annotations

import pytest
from agent_infra.components.gcp.database import Database
from agent_infra.components.gcp.labels import gcp_labels
from agent_infra.components.gcp.network import Network
from agent_infra.components.gcp.redis import Redis
from agent_infra.components.gcp.secrets import Secrets

from agent_infra.offline import Plan, synthesize

MEMBERS = {"api": "serviceAccount:api@p.iam", "worker": "serviceAccount:w@p.iam"}


@pytest.fixture(scope="module")
def stores() -> Plan:
    def program() -> None:
        network = Network("net", {"region": "us-central1"})
        Redis("cache", {"region": "us-central1", "network_id": network.network_id, "tier": "BASIC",
                        "accessors": MEMBERS})
        Database("db", {"region": "us-central1", "network_id": network.network_id, "password": "pw",
                        "high_availability": False, "deletion_protection": False, "accessors": {"api": MEMBERS["api"]}})
        Secrets("app", {"values": {"AGENT_API_KEYS": "k"}, "existing": {"AGENT_LLM_API_KEY": "projects/p/secrets/llm"},
                        "accessors": MEMBERS, "labels": {"stack": "test"}})
    return synthesize(program)


def test_network_is_custom_mode_with_private_services_access(stores: Plan) -> None:
    assert stores.one("gcp:compute/network:Network").inputs["autoCreateSubnetworks"] is False
    assert stores.one("gcp:compute/subnetwork:Subnetwork").inputs["privateIpGoogleAccess"] is True
    assert stores.one("gcp:compute/globalAddress:GlobalAddress").inputs["purpose"] == "VPC_PEERING"
    peering = stores.one("gcp:servicenetworking/connection:Connection")
    assert peering.inputs["service"] == "servicenetworking.googleapis.com"


def test_redis_defaults_are_auth_and_tls(stores: Plan) -> None:
    redis = stores.one("gcp:redis/instance:Instance", "cache")
    assert (redis.inputs["authEnabled"], redis.inputs["transitEncryptionMode"]) == (True, "SERVER_AUTHENTICATION")
    assert redis.inputs["authorizedNetwork"] == stores.one("gcp:compute/network:Network").outputs["id"]
    assert redis.inputs["persistenceConfig"]["persistenceMode"] == "RDB"


def test_database_has_no_public_ip_and_its_password_is_secret(stores: Plan) -> None:
    sql = stores.one("gcp:sql/databaseInstance:DatabaseInstance", "db")
    assert sql.get("settings.ipConfiguration.ipv4Enabled") is False
    assert sql.get("settings.availabilityType") == "ZONAL" and sql.inputs["deletionProtection"] is False
    assert stores.one("gcp:sql/database:Database").inputs["name"] == "agent"
    assert stores.one("gcp:sql/user:User").inputs["password"] == "[secret]"
    readers = [m for m in stores.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
               if m.name.startswith("db-password")]
    assert [m.inputs["member"] for m in readers] == [MEMBERS["api"]]


def test_secrets_copy_config_values_and_grant_per_secret(stores: Plan) -> None:
    secret = stores.one("gcp:secretmanager/secret:Secret", "app-agent-api-keys")
    assert secret.inputs["secretId"] == "agent-infra-test-app-agent-api-keys"
    assert secret.inputs["replication"] == {"auto": {}} and secret.inputs["labels"] == {"stack": "test"}
    assert stores.one("gcp:secretmanager/secretVersion:SecretVersion", "app-agent-api-keys").inputs["secretData"] \
        == "[secret]"
    grants = {(m.inputs["secretId"], m.inputs["member"]) for m in stores.of_type(
        "gcp:secretmanager/secretIamMember:SecretIamMember") if m.name.startswith("app-")}
    assert ("projects/p/secrets/llm", MEMBERS["worker"]) in grants and len(grants) == 4


def test_labels_are_sanitized() -> None:
    assert gcp_labels({"Cost Center": "AI Agents", "9x": "A.B", "": "x"}) == {
        "cost_center": "ai_agents", "t_9x": "a_b"}


def test_memorystore_snapshots_the_queue_every_hour() -> None:
    # Memorystore for Redis has no AOF: the shortest RDB period bounds what a BASIC restart loses.
    from agent_infra.components.gcp.redis import Redis

    plan = synthesize(lambda: Redis("queue", {"region": "us-central1", "network_id": "projects/p/global/networks/n"}),
                      config={"gcp:project": "p"})
    instance = plan.one("gcp:redis/instance:Instance", "queue")
    assert instance.inputs["persistenceConfig"] == {"persistenceMode": "RDB", "rdbSnapshotPeriod": "ONE_HOUR"}
