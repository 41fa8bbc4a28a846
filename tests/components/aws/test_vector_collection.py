"""VectorCollection block on the offline plan: a VECTORSEARCH collection that is encrypted, reachable only
through its VPC endpoint, and readable only by the roles it is given."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.aws import VectorCollection

from agent_infra.offline import Plan, synthesize

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


@pytest.fixture(scope="module")
def hybrid() -> Plan:
    from agent_infra.components.config import load_deployment
    from agent_infra.components.topology import deploy

    config = load_deployment({"cloud": "aws", "topology": "hybrid", "environment": "dev",
                              "app": {"image": "public.ecr.aws/acme/agent-app:1.2.3"},
                              "vectors": {"backend": "opensearch"},
                              "budget": {"emails": ["team@example.com"]}})
    return synthesize(lambda: deploy("agent", config), stack="dev")


@pytest.mark.parametrize("service", ["api", "worker"])
def test_hybrid_task_roles_get_exactly_api_access_on_the_collection(hybrid: Plan, service: str) -> None:
    collection = hybrid.one("aws:opensearch/serverlessCollection:ServerlessCollection", "agent-vectors")
    statements = json.loads(hybrid.one("aws:iam/rolePolicy:RolePolicy", f"agent-{service}-task").inputs["policy"])[
        "Statement"]
    aoss = [s for s in statements if any(a.startswith("aoss:") for a in s["Action"])]
    assert aoss == [{"Effect": "Allow", "Action": ["aoss:APIAccessAll"], "Resource": [collection.outputs["arn"]],
                     "Sid": "VectorCollectionAccess"}]
    execution = json.loads(hybrid.one("aws:iam/rolePolicy:RolePolicy", f"agent-{service}-execution").inputs["policy"])
    assert not any(a.startswith("aoss:") for s in execution["Statement"] for a in s["Action"])


def test_hybrid_data_access_names_both_task_roles_and_the_app_gets_the_endpoint(hybrid: Plan) -> None:
    roles = sorted(hybrid.one("aws:iam/role:Role", f"agent-{s}-task").outputs["arn"] for s in ("api", "worker"))
    access = json.loads(hybrid.one("aws:opensearch/serverlessAccessPolicy:ServerlessAccessPolicy",
                                   "agent-vectors-access").inputs["policy"])
    assert len(access) == 1 and access[0]["Principal"] == roles
    permissions = {p for rule in access[0]["Rules"] for p in rule["Permission"]}
    # What OpenSearchMemory does: create/describe the index, search, index and delete documents.
    assert {"aoss:CreateIndex", "aoss:DescribeIndex", "aoss:ReadDocument", "aoss:WriteDocument"} <= permissions
    collection = hybrid.one("aws:opensearch/serverlessCollection:ServerlessCollection", "agent-vectors")
    for service in ("api", "worker"):
        app = json.loads(hybrid.one("aws:ecs/taskDefinition:TaskDefinition",
                                    f"agent-{service}").inputs["containerDefinitions"])[0]
        env = {e["name"]: e["value"] for e in app["environment"]}
        assert env["AGENT_VECTOR_BACKEND"] == "opensearch"
        assert env["AGENT_VECTOR_ENDPOINT"] == collection.outputs["collectionEndpoint"]
