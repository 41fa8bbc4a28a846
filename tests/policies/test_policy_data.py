"""Encryption, private databases, backups, deletion protection, S3 baseline."""

from __future__ import annotations

from agent_infra.policies.engine import UNKNOWN
from policy_helpers import messages, res

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
AURORA = "aws:rds/cluster:Cluster"
TABLE = "aws:dynamodb/table:Table"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
BUCKET = "aws:s3/bucketV2:BucketV2"


def test_encryption_at_rest() -> None:
    ok = [res("aws:sqs/queue:Queue", {"sqsManagedSseEnabled": True}), res("aws:sqs/queue:Queue", {"kmsMasterKeyId": "k"}),
          res(REDIS, {"atRestEncryptionEnabled": True}), res(AURORA, {"storageEncrypted": True}), res(TABLE, {}),
          res(AURORA, {"storageEncrypted": UNKNOWN})]
    assert messages("encryption-at-rest", *ok) == []
    assert messages("encryption-at-rest", res("aws:sqs/queue:Queue", {}, name="q"), res(REDIS, {}, name="redis"),
                    res(AURORA, {"storageEncrypted": False}, name="db"),
                    res(TABLE, {"serverSideEncryption": {"enabled": False}}, name="t")) == [
        "q: neither sqsManagedSseEnabled nor kmsMasterKeyId is set", "redis: atRestEncryptionEnabled is not true",
        "db: storageEncrypted is not true", "t: serverSideEncryption.enabled is false"]


def test_encryption_in_transit() -> None:
    assert messages("encryption-in-transit", res(REDIS, {"transitEncryptionEnabled": True}),
                    res(SQL, {"settings": {"ipConfiguration": {"sslMode": "ENCRYPTED_ONLY"}}})) == []
    assert messages("encryption-in-transit", res(REDIS, {"transitEncryptionEnabled": False}, name="redis"),
                    res(SQL, {"settings": {"ipConfiguration": {"ipv4Enabled": False}}}, name="sql")) == [
        "redis: transitEncryptionEnabled is not true", "sql: settings.ipConfiguration.sslMode is not ENCRYPTED_ONLY"]


def test_no_public_database() -> None:
    instance = "aws:rds/clusterInstance:ClusterInstance"
    assert messages("no-public-database", res(instance, {"publiclyAccessible": False}),
                    res(SQL, {"settings": {"ipConfiguration": {"authorizedNetworks": [{"value": "10.0.0.0/8"}]}}})) == []
    assert messages("no-public-database", res(instance, {"publiclyAccessible": True}, name="db"),
                    res(SQL, {"settings": {"ipConfiguration": {"authorizedNetworks": [{"value": "0.0.0.0/0"}]}}},
                        name="sql")) == [
        "db: publiclyAccessible is true", "sql: authorizedNetworks allows 0.0.0.0/0"]


def test_backups_enabled() -> None:
    assert messages("backups-enabled", res(AURORA, {"backupRetentionPeriod": 7}),
                    res(TABLE, {"pointInTimeRecovery": {"enabled": True}}),
                    res(REDIS, {"snapshotRetentionLimit": 1}), res(AURORA, {"backupRetentionPeriod": UNKNOWN})) == []
    assert messages("backups-enabled", res(AURORA, {}, name="db"), res(TABLE, {}, name="t"), res(REDIS, {}, name="r"),
                    res(SQL, {"settings": {"backupConfiguration": {"enabled": False}}}, name="sql")) == [
        "db: backupRetentionPeriod is 1 day(s), below the minimum of 7", "t: pointInTimeRecovery.enabled is not true",
        "r: snapshotRetentionLimit is 0, so the cache has no backups",
        "sql: settings.backupConfiguration.enabled is not true"]


def test_deletion_protection_only_in_production() -> None:
    dev = res(AURORA, {"deletionProtection": False, "tags": {"environment": "dev"}})
    prod_ok = res(TABLE, {"deletionProtectionEnabled": True, "tags": {"environment": "prod"}})
    cloud_sql_default = res(SQL, {"settings": {"userLabels": {"environment": "prod"}}})
    assert messages("deletion-protection-in-production", dev, prod_ok, cloud_sql_default) == []
    prod = res(AURORA, {"tags": {"environment": "production"}}, name="db")
    assert messages("deletion-protection-in-production", prod) == [
        "db: deletionProtection is not true in a production stack"]
    by_provider = res(TABLE, {}, name="t", provider={"defaultTags": '{"tags": {"environment": "prod"}}'})
    assert messages("deletion-protection-in-production", by_provider) == [
        "t: deletionProtectionEnabled is not true in a production stack"]
    assert messages("deletion-protection-in-production", dev, config={"environment": "prod"}) == [
        "r: deletionProtection is not true in a production stack"]


def test_s3_bucket_encryption_and_public_access_block() -> None:
    bucket = res(BUCKET, {}, name="artifacts")
    sse = res("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
              {"bucket": UNKNOWN}, name="sse", deps=(bucket,))
    block = res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
                 "restrictPublicBuckets": True}, name="pab", deps=(bucket,))
    assert messages("s3-bucket-encryption", bucket, sse) == []
    assert messages("s3-bucket-public-access-block", bucket, block) == []
    assert messages("s3-bucket-encryption", bucket) == ["artifacts: bucket has no server-side encryption configuration"]
    assert messages("s3-bucket-public-access-block", bucket) == ["artifacts: bucket has no public access block"]
    partial = res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", {"blockPublicAcls": True}, deps=(bucket,))
    assert messages("s3-bucket-public-access-block", bucket, partial) == [
        "artifacts: public access block leaves blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets off"]


def test_boolean_text_and_valkey_default_count_as_encrypted() -> None:
    assert messages("encryption-at-rest", res(REDIS, {"atRestEncryptionEnabled": "true"}),
                    res(REDIS, {"engine": "valkey"})) == []
    assert messages("encryption-at-rest", res(REDIS, {"engine": "redis", "atRestEncryptionEnabled": "false"},
                                              name="r")) == ["r: atRestEncryptionEnabled is not true"]
