"""DynamoDB table for session state and tasks: on-demand, TTL, point-in-time recovery, encrypted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from .iam import Grant

TTL_ATTRIBUTE = "expires_at"
"""Epoch-seconds attribute DynamoDB's TTL deletes by; agent_app writes it on every save."""


class SessionTableArgs(ComponentArgs):
    """Session-state table. Cost: on-demand, about $0 idle; $1.25 per million writes."""

    hash_key: str = "pk"
    """Partition key (string)."""
    range_key: str | None = "sk"
    """Sort key (string). None for a key-only table (e.g. WebSocket connections)."""
    ttl_attribute: str = TTL_ATTRIBUTE
    """Attribute holding the expiry time, epoch seconds."""
    point_in_time_recovery: bool = True
    """Continuous backups for 35 days. About 20% of storage cost; on by default."""
    deletion_protection: bool = False
    """Refuse table deletion. Topologies turn it on in production."""
    kms_key_arn: str | pulumi.Output[str] | None = None
    """Customer-managed KMS key. Default: an AWS-owned key (still encrypted)."""
    tags: dict[str, str] = {}
    transforms: Mapping[Literal["table"], Transform] = {}
    """Escape hatch per child role (`table`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class SessionTable(pulumi.ComponentResource):
    """A DynamoDB table with TTL; `grant_read_write` gives exactly the item actions the app uses."""

    name: pulumi.Output[str]
    """Table name; reaches the app as AGENT_STATE_TABLE."""
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SessionTableArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(SessionTableArgs, args, name)
        super().__init__("agent-infra:aws:SessionTable", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        attributes = [{"name": args.hash_key, "type": "S"}]
        if args.range_key:
            attributes.append({"name": args.range_key, "type": "S"})
        self.table = child(
            "table", aws.dynamodb.Table, name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=args.hash_key,
            range_key=args.range_key,
            attributes=attributes,
            ttl={"attribute_name": args.ttl_attribute, "enabled": True},
            point_in_time_recovery={"enabled": args.point_in_time_recovery},
            server_side_encryption={"enabled": True, **({"kms_key_arn": args.kms_key_arn} if args.kms_key_arn else {})},
            deletion_protection_enabled=args.deletion_protection)
        self.name, self.arn = self.table.name, self.table.arn
        # IAM wants Sids unique within a policy, and one role may be granted several tables.
        self._sid = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) + "ReadWrite"
        self.register_outputs({"name": self.name, "arn": self.arn})

    def grant_read_write(self) -> Grant:
        """Item-level reads and conditional writes; no table administration, no scans.

        A `TransactWriteItems` call is authorised per item by PutItem / UpdateItem / DeleteItem /
        ConditionCheckItem: there is no IAM action of that name. The Sid names this table."""
        return Grant(("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                      "dynamodb:Query", "dynamodb:ConditionCheckItem"), (self.arn,), self._sid)
