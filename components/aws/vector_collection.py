"""OpenSearch Serverless vector collection with its encryption, network and data-access policies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from .iam import Grant

Value = str | pulumi.Output[str]


class VectorCollectionArgs(ComponentArgs):
    """A VECTORSEARCH collection reachable only through a VPC endpoint.

    Cost: at least 2 OCUs (indexing + search) at $0.24/OCU-hour, about $350/month with standby
    replicas off and more with them on; storage $0.024/GB-month. pgvector in Aurora (the default
    vector backend) costs nothing extra: choose this only for large or high-QPS memories.
    """

    collection_name: str = Field(pattern=r"^[a-z][a-z0-9-]{2,31}$")
    """Collection name (3-32 chars, lower case); policies refer to it by name."""
    vpc_id: Value
    subnet_ids: list[Value]
    """Private subnets for the collection's VPC endpoint."""
    reader_role_arns: list[Value] = []
    """Task roles allowed to read and write indexes (data-access policy principals)."""
    standby_replicas: bool = False
    """Replicas in a second AZ (production)."""
    kms_key_arn: str | None = None
    """Customer-managed key. None: an AWS-owned key."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["access_policy", "collection", "encryption_policy", "network_policy", "security_group", "vpc_endpoint"], Transform] = {}
    """Escape hatch per child role (`access_policy`, `collection`, `encryption_policy`, `network_policy`, `security_group`, `vpc_endpoint`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class VectorCollection(pulumi.ComponentResource):
    """`collection` plus the three policies OpenSearch Serverless requires before it exists."""

    endpoint: pulumi.Output[str]
    """`https://<id>.<region>.aoss.amazonaws.com` (reachable from the VPC endpoint only)."""
    arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    """The VPC endpoint's security group; allow task security groups to it on 443."""

    def __init__(self, name: str, args: VectorCollectionArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(VectorCollectionArgs, args, name)
        super().__init__("agent-infra:aws:VectorCollection", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        coll = args.collection_name
        resource = [f"collection/{coll}"]
        encryption = ({"AWSOwnedKey": True} if args.kms_key_arn is None else {"KmsARN": args.kms_key_arn})
        enc = child("encryption_policy", aws.opensearch.ServerlessSecurityPolicy, f"{name}-encryption",
                    name=f"{coll}-enc"[:32], type="encryption",
                    policy=json.dumps({"Rules": [{"ResourceType": "collection", "Resource": resource}], **encryption}))
        self.security_group = child("security_group", aws.ec2.SecurityGroup, name, vpc_id=args.vpc_id,
                                    description=f"{name} vector endpoint: ingress only from allowed services",
                                    )
        self.security_group_id = self.security_group.id
        endpoint = child("vpc_endpoint", aws.opensearch.ServerlessVpcEndpoint, f"{name}-endpoint",
                         name=f"{coll}-vpce"[:32], vpc_id=args.vpc_id, subnet_ids=list(args.subnet_ids),
                         security_group_ids=[self.security_group.id])
        network = child(
            "network_policy", aws.opensearch.ServerlessSecurityPolicy, f"{name}-network", name=f"{coll}-net"[:32],
            type="network", policy=endpoint.id.apply(lambda vpce: json.dumps([{
                "Rules": [{"ResourceType": "collection", "Resource": resource},
                          {"ResourceType": "dashboard", "Resource": resource}],
                "AllowFromPublic": False, "SourceVPCEs": [vpce]}])))
        self.collection = child(
            "collection", aws.opensearch.ServerlessCollection, name, name=coll, type="VECTORSEARCH",
            standby_replicas="ENABLED" if args.standby_replicas else "DISABLED",
            opts=pulumi.ResourceOptions(depends_on=[enc, network]))
        self.endpoint = self.collection.collection_endpoint
        self.arn = self.collection.arn
        self._name, self._coll, self._child = name, coll, child
        if args.reader_role_arns:
            self.allow_roles(args.reader_role_arns)
        self.register_outputs({"endpoint": self.endpoint, "arn": self.arn})

    def allow_roles(self, role_arns: list[Value]) -> None:
        """Create the data-access policy for these IAM roles (read and write documents and indexes)."""
        name, coll, child = self._name, self._coll, self._child
        resource = [f"collection/{coll}"]
        child("access_policy", aws.opensearch.ServerlessAccessPolicy, f"{name}-access", name=f"{coll}-access"[:32],
              type="data", policy=pulumi.Output.all(*role_arns).apply(lambda roles: json.dumps([{
                  "Rules": [{"ResourceType": "index", "Resource": [f"index/{coll}/*"],
                             "Permission": ["aoss:CreateIndex", "aoss:DescribeIndex", "aoss:UpdateIndex",
                                            "aoss:ReadDocument", "aoss:WriteDocument"]},
                            {"ResourceType": "collection", "Resource": resource,
                             "Permission": ["aoss:DescribeCollectionItems"]}],
                  "Principal": sorted(roles)}])))

    def grant_access(self) -> Grant:
        """IAM side of data access (the data-access policy is the other side)."""
        return Grant(("aoss:APIAccessAll",), (self.arn,), "VectorCollectionAccess")
