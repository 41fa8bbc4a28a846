"""Data is encrypted at rest and in transit, private, backed up, and protected in production."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..engine import UNKNOWN, Context, Finding, Resource, Rule, is_unknown
from ._common import (
    CLOUD_RUN_SERVICE,
    CLOUD_SQL,
    DYNAMODB_TABLE,
    MEMORYSTORE,
    PRODUCTION_CONFIG,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_INSTANCE,
    REDIS_GROUP,
    S3_BUCKETS,
    S3_ENCRYPTION,
    S3_PUBLIC_ACCESS_BLOCK,
    SQS_QUEUE,
    as_dict,
    as_list,
    fmt,
    for_types,
    is_production,
    number,
    of_type,
    resource_rule,
    stack_rule,
)

RULES: list[Rule] = []


def _flag(resource: Resource, path: str, want: bool = True, default: object = None) -> bool | None:
    """True if the boolean property equals `want`, None if it is unknown. Text "true"/"false" counts
    as the boolean: the provider coerces it the same way."""
    value = resource.get(path, default)
    if is_unknown(value):
        return None
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    return value is want


@resource_rule(
    RULES, name="encryption-at-rest", area="data", level="mandatory", severity="high",
    types={SQS_QUEUE, REDIS_GROUP, RDS_CLUSTER, RDS_INSTANCE, DYNAMODB_TABLE},
    description="Checks whether queues, caches, databases and tables are encrypted at rest.",
    remediation="SQS: sqsManagedSseEnabled: true or kmsMasterKeyId; ElastiCache: atRestEncryptionEnabled: true; "
                "RDS/Aurora: storageEncrypted: true; DynamoDB: leave serverSideEncryption enabled.",
    fixes={SQS_QUEUE: "Set sqsManagedSseEnabled: true, or kmsMasterKeyId for a customer-managed key (agent-infra's "
                      "Queue always encrypts).",
           REDIS_GROUP: "Set atRestEncryptionEnabled: true (the valkey engine's default); changing it replaces "
                        "the replication group.",
           RDS_CLUSTER: "Set storageEncrypted: true (with kmsKeyId for a customer-managed key); an existing "
                        "cluster is encrypted by restoring a snapshot into a new one.",
           RDS_INSTANCE: "Set storageEncrypted: true; an existing instance is encrypted by restoring a snapshot.",
           DYNAMODB_TABLE: "Remove serverSideEncryption.enabled: false (tables are encrypted with an AWS-owned key "
                           "by default) or set it to true with a kmsKeyArn."},
)
def encryption_at_rest(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type == SQS_QUEUE:
        kms, sse = resource.get("kmsMasterKeyId"), resource.get("sqsManagedSseEnabled")
        if not kms and sse is not True and not is_unknown(sse) and not is_unknown(kms):
            yield "neither sqsManagedSseEnabled nor kmsMasterKeyId is set"
    elif resource.type == REDIS_GROUP and _flag(resource, "atRestEncryptionEnabled",
                                                default=resource.get("engine") == "valkey") is False:
        yield "atRestEncryptionEnabled is not true"
    elif resource.type in (RDS_CLUSTER, RDS_INSTANCE) and _flag(resource, "storageEncrypted") is False:
        if resource.get("engineMode") != "serverless":  # Aurora Serverless v1 is always encrypted
            yield "storageEncrypted is not true"
    elif resource.type == DYNAMODB_TABLE and _flag(resource, "serverSideEncryption.enabled", False) is True:
        yield "serverSideEncryption.enabled is false"


@resource_rule(
    RULES, name="encryption-in-transit", area="data", level="mandatory", severity="high",
    types={REDIS_GROUP, CLOUD_SQL, MEMORYSTORE},
    description="Checks whether caches and databases only accept encrypted connections.",
    remediation="ElastiCache: transitEncryptionEnabled: true; Cloud SQL: settings.ipConfiguration.sslMode: "
                "ENCRYPTED_ONLY; Memorystore: transitEncryptionMode: SERVER_AUTHENTICATION.",
    fixes={REDIS_GROUP: "Set transitEncryptionEnabled: true and connect with rediss:// (TLS).",
           CLOUD_SQL: "Set settings.ipConfiguration.sslMode: ENCRYPTED_ONLY.",
           MEMORYSTORE: "Set transitEncryptionMode: SERVER_AUTHENTICATION and connect with TLS."},
)
def encryption_in_transit(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type == REDIS_GROUP and _flag(resource, "transitEncryptionEnabled") is False:
        yield "transitEncryptionEnabled is not true"
    elif resource.type == CLOUD_SQL:
        ssl = resource.get("settings.ipConfiguration")
        if is_unknown(ssl):
            return
        mode, required = as_dict(ssl).get("sslMode"), as_dict(ssl).get("requireSsl")
        if mode not in ("ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED") and required is not True:
            yield "settings.ipConfiguration.sslMode is not ENCRYPTED_ONLY"
    elif resource.type == MEMORYSTORE and resource.get("transitEncryptionMode") not in ("SERVER_AUTHENTICATION",
                                                                                      UNKNOWN):
        yield "transitEncryptionMode is not SERVER_AUTHENTICATION"


OPEN_CIDRS = ("0.0.0.0/0", "::/0")


@resource_rule(
    RULES, name="no-public-database", area="data", level="mandatory", severity="critical",
    types={RDS_INSTANCE, RDS_CLUSTER_INSTANCE, CLOUD_SQL},
    description="Checks whether databases are unreachable from the internet.",
    remediation="Set publiclyAccessible: false (RDS) or remove 0.0.0.0/0 from Cloud SQL authorizedNetworks and "
                "connect through private networking or the Cloud SQL Auth Proxy.",
    fixes={**for_types((RDS_INSTANCE, RDS_CLUSTER_INSTANCE), "Set publiclyAccessible: false and reach the database "
                       "from inside the VPC (security group from the app's security group only)."),
           CLOUD_SQL: "Remove 0.0.0.0/0 from settings.ipConfiguration.authorizedNetworks; use private IP or the "
                      "Cloud SQL Auth Proxy."},
)
def no_public_database(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type in (RDS_INSTANCE, RDS_CLUSTER_INSTANCE):
        if resource.get("publiclyAccessible") is True:
            yield "publiclyAccessible is true"
        return
    for network in as_list(resource.get("settings.ipConfiguration.authorizedNetworks")):
        if as_dict(network).get("value") in OPEN_CIDRS:
            yield f"authorizedNetworks allows {as_dict(network).get('value')}"


@resource_rule(
    RULES, name="backups-enabled", area="data", level="mandatory", severity="high",
    types={RDS_CLUSTER, RDS_INSTANCE, DYNAMODB_TABLE, REDIS_GROUP, CLOUD_SQL},
    description="Checks whether databases, tables and caches have point-in-time recovery or automated backups.",
    remediation="RDS/Aurora: backupRetentionPeriod >= minRetentionDays (agent-infra: database.backup_retention_days); "
                "DynamoDB: pointInTimeRecovery.enabled: true; ElastiCache: snapshotRetentionLimit >= 1; "
                "Cloud SQL: settings.backupConfiguration.enabled: true.",
    fixes={**for_types((RDS_CLUSTER, RDS_INSTANCE), "Set backupRetentionPeriod to at least minRetentionDays "
                       "(agent-infra: database.backup_retention_days)."),
           DYNAMODB_TABLE: "Set pointInTimeRecovery: {enabled: true}.",
           REDIS_GROUP: "Set snapshotRetentionLimit: 1 or more (and a snapshotWindow).",
           CLOUD_SQL: "Set settings.backupConfiguration: {enabled: true, pointInTimeRecoveryEnabled: true}."},
    config={"minRetentionDays": {"type": "number", "default": 7,
                                 "description": "Shortest acceptable RDS/Aurora backup retention, days."}},
)
def backups_enabled(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type in (RDS_CLUSTER, RDS_INSTANCE):
        raw = resource.get("backupRetentionPeriod", 1)
        days = number(raw)
        if days is not None and days < ctx["minRetentionDays"]:
            yield f"backupRetentionPeriod is {fmt(days)} day(s), below the minimum of {fmt(ctx['minRetentionDays'])}"
    elif resource.type == DYNAMODB_TABLE and _flag(resource, "pointInTimeRecovery.enabled") is False:
        yield "pointInTimeRecovery.enabled is not true"
    elif resource.type == REDIS_GROUP:
        limit = number(resource.get("snapshotRetentionLimit", 0))
        if limit is not None and limit < 1:
            yield "snapshotRetentionLimit is 0, so the cache has no backups"
    elif resource.type == CLOUD_SQL and _flag(resource, "settings.backupConfiguration.enabled") is False:
        yield "settings.backupConfiguration.enabled is not true"


@resource_rule(
    RULES, name="deletion-protection-in-production", area="data", level="mandatory", severity="high",
    types={RDS_CLUSTER, RDS_INSTANCE, DYNAMODB_TABLE, CLOUD_SQL, CLOUD_RUN_SERVICE},
    description="Checks whether stateful resources of a production stack are protected from deletion.",
    remediation="Set deletionProtection: true (RDS, Cloud SQL, Cloud Run) or deletionProtectionEnabled: true "
                "(DynamoDB); agent-infra turns it on when production is true or environment is prod.",
    config=PRODUCTION_CONFIG,
)
def deletion_protection(resource: Resource, ctx: Context) -> Iterator[str]:
    if not is_production(resource, ctx):
        return
    key = {DYNAMODB_TABLE: "deletionProtectionEnabled"}.get(resource.type, "deletionProtection")
    default = resource.type in (CLOUD_SQL, CLOUD_RUN_SERVICE)  # the GCP provider defaults these to true
    value = resource.get(key, default)
    if value is not True and not is_unknown(value):
        yield f"{key} is not true in a production stack"


def _bucket_dependents(resources: Sequence[Resource], bucket: Resource, types: str | frozenset[str]) -> list[Resource]:
    return [r for r in of_type(resources, types) if bucket.urn in r.dependencies]


@stack_rule(
    RULES, name="s3-bucket-encryption", area="data", level="mandatory", severity="high",
    description="Checks whether every S3 bucket has a default server-side encryption configuration.",
    remediation="Add aws.s3.BucketServerSideEncryptionConfiguration for the bucket with "
                "applyServerSideEncryptionByDefault {sseAlgorithm: \"aws:kms\"} (or AES256).",
)
def s3_bucket_encryption(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    for bucket in of_type(resources, S3_BUCKETS):
        if bucket.get("serverSideEncryptionConfiguration") is None and not _bucket_dependents(
                resources, bucket, S3_ENCRYPTION):
            yield Finding("bucket has no server-side encryption configuration", urn=bucket.urn)


@stack_rule(
    RULES, name="s3-bucket-public-access-block", area="data", level="mandatory", severity="critical",
    description="Checks whether every S3 bucket blocks public access (all four settings).",
    remediation="Add aws.s3.BucketPublicAccessBlock for the bucket with blockPublicAcls, blockPublicPolicy, "
                "ignorePublicAcls and restrictPublicBuckets all true.",
)
def s3_public_access_block(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in of_type(resources, S3_BUCKETS):
        blocks = _bucket_dependents(resources, bucket, S3_PUBLIC_ACCESS_BLOCK)
        if not blocks:
            yield Finding("bucket has no public access block", urn=bucket.urn)
            continue
        for block in blocks:
            off = [k for k in keys if block.get(k) is not True and not is_unknown(block.get(k))]
            if off:
                yield Finding(f"public access block leaves {', '.join(off)} off", urn=bucket.urn)
