"""`Redis`: Memorystore for Redis with AUTH and TLS on a private services access range, and the
full connection URL (AUTH string included) stored in Secret Manager for the services to read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from .secrets import Secrets

URL_ENV = "AGENT_REDIS_URL"


class RedisArgs(ComponentArgs):
    """Memorystore for Redis: the task queue (Redis Streams) and session state. Cost: BASIC 1 GB
    about $35/month; STANDARD_HA 1 GB about $70/month (a replica in another zone)."""

    region: str
    """Region of the instance, the services' region."""
    network_id: str | pulumi.Output[str]
    """VPC (`projects/P/global/networks/NAME`) whose private services access the instance joins."""
    reserved_ip_range: str | pulumi.Output[str] | None = None
    """Name of the private services access range to take the instance's address from. None: any
    allocated range of the peering."""
    tier: Literal["BASIC", "STANDARD_HA"] = "STANDARD_HA"
    """STANDARD_HA keeps a replica in another zone with automatic failover; BASIC is one node
    (cheaper, loses queued tasks and state on a node failure). Changing it replaces the instance."""
    memory_size_gb: int = Field(1, ge=1, le=300)
    """Capacity in GiB; the Redis memory alert fires at `memory_alert_ratio` of it."""
    redis_version: str = "REDIS_7_2"
    """Redis version (Streams with consumer groups need 5+; 7.2 is the newest Memorystore offers)."""
    persistence: bool = True
    """RDB snapshots every hour (Memorystore's shortest period; it has no append-only file), so a
    restart keeps queued tasks and state up to the last snapshot. A 202 survives a node failure only
    on STANDARD_HA (the replica takes over; replication is asynchronous, so the last moment before
    a failover can still be lost). No extra cost."""
    accessors: Mapping[str, str | pulumi.Output[str]] = {}
    """Label -> IAM member allowed to read the URL secret (`secretAccessor` on that secret only)."""
    labels: dict[str, str] = {}
    """Labels on the instance and the secret."""
    transforms: Mapping[Literal["instance"], Transform] = {}
    """Escape hatch per child role (`instance`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Redis(pulumi.ComponentResource):
    """Memorystore with AUTH and in-transit encryption; the URL reaches the app only as a secret."""

    host: pulumi.Output[str]
    """Private IP of the instance."""
    port: pulumi.Output[int]
    """Port (6378 with TLS)."""
    url_secret: pulumi.Output[str]
    """Secret id of `rediss://:<auth>@host:port/0`: give it to Cloud Run as AGENT_REDIS_URL."""
    instance_id: pulumi.Output[str]
    """Instance id for alert filters (`resource.labels.instance_id`)."""

    def __init__(self, name: str, args: RedisArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(RedisArgs, args, name)
        super().__init__("agent-infra:gcp:Redis", name, None, opts)
        child = ChildFactory(self, args.transforms)
        persistence = ({"persistence_mode": "RDB", "rdb_snapshot_period": "ONE_HOUR"} if args.persistence
                       else {"persistence_mode": "DISABLED"})
        self.instance = child(
            "instance", gcp.redis.Instance, name, region=args.region, tier=args.tier,
            memory_size_gb=args.memory_size_gb, redis_version=args.redis_version,
            authorized_network=args.network_id, connect_mode="PRIVATE_SERVICE_ACCESS",
            reserved_ip_range=args.reserved_ip_range, auth_enabled=True,
            transit_encryption_mode="SERVER_AUTHENTICATION", persistence_config=persistence,
            labels=dict(args.labels))
        url = pulumi.Output.all(self.instance.auth_string, self.instance.host, self.instance.port).apply(
            lambda a: f"rediss://:{quote(str(a[0] or ''), safe='')}@{a[1]}:{int(a[2] or 6378)}/0")
        self.secrets = Secrets(f"{name}-url", {"values": {URL_ENV: pulumi.Output.secret(url)},
                                               "accessors": dict(args.accessors), "labels": dict(args.labels)},
                               pulumi.ResourceOptions(parent=self))
        self.host, self.port = self.instance.host, self.instance.port
        # Memorystore signs its TLS certificate with a per-instance CA no public store trusts;
        # the app adds exactly this CA (AGENT_REDIS_CA_CERT), never skips verification.
        self.ca_cert: pulumi.Output[str | None] = self.instance.server_ca_certs.apply(
            lambda certs: certs[0].cert if certs else None)
        self.url_secret = self.secrets.refs[URL_ENV]
        self.instance_id = self.instance.id
        self.register_outputs({"host": self.host, "port": self.port, "url_secret": self.url_secret})
