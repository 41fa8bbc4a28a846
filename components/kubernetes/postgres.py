"""`Postgres`: PostgreSQL with pgvector, as a one-pod StatefulSet or a CloudNativePG `Cluster`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import (
    container_security_context,
    labels,
    metadata,
    pull_policy,
    scratch_volume,
    selector,
    single_replica_statefulset_spec,
    str_transforms,
)
from .secrets import SecretKey, secret_files_volume

PGVECTOR_IMAGE = "pgvector/pgvector:0.8.0-pg17"
"""Official postgres:17 plus the pgvector extension."""
CNPG_IMAGE = "ghcr.io/cloudnative-pg/postgresql:17.5"
"""CloudNativePG operand image (ships pgvector)."""
CNPG_API = "postgresql.cnpg.io/v1"
POSTGRES_UID = 999
"""The `postgres` user of the official image (CloudNativePG uses 26)."""
POSTGRES_PORT = 5432
INIT_SQL = "CREATE EXTENSION IF NOT EXISTS vector;\n"
PASSWORD_DIR = "/run/secrets/postgres"
"""The password file's directory; the image's entrypoint reads `POSTGRES_PASSWORD_FILE`."""


class PostgresArgs(ComponentArgs):
    """PostgreSQL for tasks, results and vector memory. Cost: the PVC(s) plus 250m CPU / 512Mi
    reserved per instance."""

    namespace: str | pulumi.Output[str]
    """Namespace to run in."""
    instance: str
    """`app.kubernetes.io/instance` label (the topology's name)."""
    mode: Literal["statefulset", "cloudnativepg"] = "statefulset"
    """`statefulset`: one pod from a pgvector image. `cloudnativepg`: a CNPG `Cluster` (operator
    required) with `instances` replicas, automatic failover and an operator-generated password."""
    database: str = Field("agent", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """Database created at first start."""
    user: str = Field("agent", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """Application user (owner of `database`)."""
    password_secret: str | None = None
    """statefulset mode: Secret holding the user's password (required)."""
    password_key: str | None = None
    """Key in `password_secret`."""
    instances: int = Field(1, ge=1, le=9)
    """cloudnativepg mode: instances (3 for a highly available primary + 2 replicas)."""
    image: str | None = None
    """Pinned image. Default: pgvector/pgvector (statefulset) or the CNPG operand image. A digest
    (`pgvector/pgvector@sha256:...`) is pulled `IfNotPresent`, a tag `Always`."""
    storage_gb: int = Field(20, ge=1, le=10_000)
    """PVC size per instance."""
    storage_class: str | None = None
    """StorageClass. None: the cluster default."""
    labels: dict[str, str] = {}
    """Labels on every object."""
    transforms: Mapping[Literal["cluster", "init_sql", "service", "statefulset"], Transform] = {}
    """Escape hatch per child role (`cluster`, `init_sql`, `service`, `statefulset`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _password(self) -> PostgresArgs:
        if self.mode == "statefulset" and not (self.password_secret and self.password_key):
            raise ValueError("statefulset mode needs password_secret and password_key")
        return self


class Postgres(pulumi.ComponentResource):
    """PostgreSQL named like the component; `host` is the read-write address."""

    host: str
    """In-cluster DNS name of the primary within the namespace."""
    port: int
    """5432."""
    database: str
    """Database name."""
    user: str
    """Application user."""
    password: SecretKey
    """Where the user's password lives (CNPG: the operator's `<name>-app` Secret)."""
    selector: dict[str, str]
    """Labels of the PostgreSQL pods (for NetworkPolicies)."""

    def __init__(self, name: str, args: PostgresArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(PostgresArgs, args, "postgres")
        super().__init__("agent-infra:kubernetes:Postgres", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        pod_labels = labels(args.labels, args.instance, "postgres")
        self.port, self.database, self.user = POSTGRES_PORT, args.database, args.user
        claim_spec: dict[str, Any] = {"size": f"{args.storage_gb}Gi"}
        if args.mode == "cloudnativepg":
            self.selector = {"cnpg.io/cluster": name}
            if args.storage_class:
                claim_spec["storageClass"] = args.storage_class
            self.cluster = child(
                "cluster", k8s.apiextensions.CustomResource, name, api_version=CNPG_API, kind="Cluster",
                metadata=metadata(name, args.namespace, pod_labels),
                spec={"instances": args.instances, "imageName": args.image or CNPG_IMAGE,
                      "primaryUpdateStrategy": "unsupervised", "enableSuperuserAccess": False,
                      "storage": claim_spec,
                      "inheritedMetadata": {"labels": pod_labels},
                      "bootstrap": {"initdb": {"database": args.database, "owner": args.user,
                                               "postInitApplicationSQL": [INIT_SQL.strip()]}},
                      "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                    "limits": {"cpu": "1", "memory": "1Gi"}}})
            self.host = f"{name}-rw"
            self.password = SecretKey(f"{name}-app", "password")
            self.register_outputs({"host": self.host, "port": POSTGRES_PORT})
            return
        self.selector = selector(args.instance, "postgres")
        self.password = SecretKey(str(args.password_secret), str(args.password_key))
        self.service = child("service", k8s.core.v1.Service, name, metadata=metadata(name, args.namespace, pod_labels),
                             spec={"clusterIP": "None", "selector": self.selector,
                                   "ports": [{"name": "postgres", "port": POSTGRES_PORT, "targetPort": "postgres"}]})
        init_name = f"{name}-init"
        self.init_sql = child("init_sql", k8s.core.v1.ConfigMap, init_name,
                              metadata=metadata(init_name, args.namespace, pod_labels),
                              data={"01-pgvector.sql": INIT_SQL})
        ready = ["sh", "-c", f"pg_isready -h 127.0.0.1 -p {POSTGRES_PORT} -U {args.user} -d {args.database}"]
        image = args.image or PGVECTOR_IMAGE
        container = {
            "name": "postgres", "image": image, "imagePullPolicy": pull_policy(image),
            "env": [{"name": "POSTGRES_USER", "value": args.user}, {"name": "POSTGRES_DB", "value": args.database},
                    {"name": "POSTGRES_PASSWORD_FILE", "value": f"{PASSWORD_DIR}/password"},
                    {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
            "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "128Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}},
            "securityContext": container_security_context(POSTGRES_UID),
            "startupProbe": {"exec": {"command": ready}, "periodSeconds": 5, "failureThreshold": 60},
            "livenessProbe": {"tcpSocket": {"port": "postgres"}, "periodSeconds": 15, "timeoutSeconds": 5,
                              "failureThreshold": 4},
            "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 10, "timeoutSeconds": 5,
                               "failureThreshold": 3},
            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                             {"name": "run", "mountPath": "/var/run/postgresql"},
                             {"name": "tmp", "mountPath": "/tmp"},
                             {"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
                             {"name": "password", "mountPath": PASSWORD_DIR, "readOnly": True}],
        }
        self.statefulset = child(
            "statefulset", k8s.apps.v1.StatefulSet, name, metadata=metadata(name, args.namespace, pod_labels),
            spec=single_replica_statefulset_spec(
                name, self.selector, pod_labels, POSTGRES_UID, container,
                [scratch_volume("run", 16), scratch_volume("tmp", 256), {"name": "init", "configMap": {"name": init_name}},
                 secret_files_volume("password", {"password": self.password})],
                "data", args.storage_gb, args.storage_class, grace_seconds=60))
        self.host = name
        self.register_outputs({"host": name, "port": POSTGRES_PORT})
