"""VectorCollection block on the offline plan: a VECTORSEARCH collection that is encrypted, reachable only
through its VPC endpoint, and readable only by the roles it is given."""

from __future__ import annotations

import json

import pytest

from components.aws import VectorCollection
from components.plan import Plan, synthesize

POLICY = "aws:opensearch/serverlessSecurityPolicy:ServerlessSecurityPolicy"
ROLES = ["arn:aws:iam::123456789012:role/worker", "arn:aws:iam::123456789012:role/api"]


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        VectorCollection("vectors", {"collection_name": "agent-memory", "vpc_id": "vpc-1",
                                     "subnet_ids": ["subnet-a", "subnet-b"], "reader_role_arns": ROLES,
                                     "standby_replicas": True})
    return synthesize(program, stack="prod")


def test_collection_is_vectorsearch_after_its_policies(plan: Plan) -> None:
    collection = plan.one("aws:opensearch/serverlessCollection:ServerlessCollection", "vectors")
    assert (collection.inputs["name"], collection.inputs["type"], collection.inputs["standbyReplicas"]) == (
        "agent-memory", "VECTORSEARCH", "ENABLED")
    policy_urns = {plan.one(POLICY, n).urn for n in ("vectors-encryption", "vectors-network")}
    assert policy_urns <= set(collection.dependencies)


def test_encrypted_and_vpc_only(plan: Plan) -> None:
    encryption = json.loads(plan.one(POLICY, "vectors-encryption").inputs["policy"])
    assert encryption == {"Rules": [{"ResourceType": "collection", "Resource": ["collection/agent-memory"]}],
                          "AWSOwnedKey": True}
    endpoint = plan.one("aws:opensearch/serverlessVpcEndpoint:ServerlessVpcEndpoint", "vectors-endpoint")
    network = json.loads(plan.one(POLICY, "vectors-network").inputs["policy"])
    assert network[0]["AllowFromPublic"] is False
    assert network[0]["SourceVPCEs"] == [endpoint.id]
    assert endpoint.inputs["securityGroupIds"] == [plan.one("aws:ec2/securityGroup:SecurityGroup", "vectors").id]


def test_data_access_only_for_the_given_roles(plan: Plan) -> None:
    access = json.loads(plan.one("aws:opensearch/serverlessAccessPolicy:ServerlessAccessPolicy",
                                 "vectors-access").inputs["policy"])
    assert access[0]["Principal"] == sorted(ROLES)
    index_rule = access[0]["Rules"][0]
    assert index_rule["Resource"] == ["index/agent-memory/*"]
    assert "aoss:DeleteIndex" not in index_rule["Permission"]
    assert not any("*" in p for rule in access[0]["Rules"] for p in rule["Permission"])
