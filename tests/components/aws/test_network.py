"""Network block on the offline plan: NAT count per mode, private subnets, endpoints, flow logs."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.aws import Network
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

NAT = "aws:ec2/natGateway:NatGateway"
ROUTES = "aws:ec2/routeTable:RouteTable"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


@pytest.fixture(scope="module")
def plan() -> Plan:
    """`dev`: the defaults (single NAT, 2 AZs). `prod`: 3 AZs, NAT per AZ, interface endpoints, ALL traffic."""
    def program() -> None:
        Network("dev")
        Network("prod", {"availability_zones": 3, "nat_gateways": "per_az", "cidr_block": "10.50.0.0/16",
                         "interface_endpoints": ["ecr.api", "logs"], "flow_log_retention_days": 365,
                         "flow_log_traffic": "ALL"})
        Network("closed", {"nat_gateways": "none", "gateway_endpoints": []})
    return synthesize(program, stack="prod")


def _nats(plan: Plan, network: str) -> list[str]:
    return sorted(r.name for r in plan.of_type(NAT) if r.name.startswith(f"{network}-"))


def test_one_nat_in_development_one_per_az_in_production(plan: Plan) -> None:
    assert _nats(plan, "dev") == ["dev-nat-0"]
    assert _nats(plan, "prod") == ["prod-nat-0", "prod-nat-1", "prod-nat-2"]
    assert _nats(plan, "closed") == []
    # Each production NAT sits in its own AZ's public subnet, and each private subnet routes to its own AZ's NAT.
    for i in range(3):
        nat = plan.one(NAT, f"prod-nat-{i}")
        assert nat.inputs["subnetId"] == plan.one("aws:ec2/subnet:Subnet", f"prod-public-{i}").id
        assert plan.one(ROUTES, f"prod-private-{i}").inputs["routes"] == [
            {"cidrBlock": "0.0.0.0/0", "natGatewayId": nat.id}]
    dev_nat = plan.one(NAT, "dev-nat-0").id
    assert [plan.one(ROUTES, f"dev-private-{i}").inputs["routes"][0]["natGatewayId"] for i in range(2)] == [
        dev_nat, dev_nat]
    assert plan.one(ROUTES, "closed-private-0").inputs.get("routes", []) == []


def test_subnets_never_assign_public_ips_and_split_the_range(plan: Plan) -> None:
    subnets = {r.name: r.inputs for r in plan.of_type("aws:ec2/subnet:Subnet") if r.name.startswith("prod-")}
    assert {n: s["cidrBlock"] for n, s in subnets.items()} == {
        "prod-public-0": "10.50.0.0/20", "prod-public-1": "10.50.16.0/20", "prod-public-2": "10.50.32.0/20",
        "prod-private-0": "10.50.128.0/20", "prod-private-1": "10.50.144.0/20", "prod-private-2": "10.50.160.0/20"}
    assert all(s["mapPublicIpOnLaunch"] is False for s in subnets.values())
    # Only the public route table reaches the internet gateway.
    igw = plan.one("aws:ec2/internetGateway:InternetGateway", "prod-igw").id
    assert plan.one(ROUTES, "prod-public").inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": igw}]
    default = plan.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "prod-default").inputs
    assert (default["ingress"], default["egress"]) == ([], [])


def test_gateway_endpoints_free_interface_endpoints_only_when_asked(plan: Plan) -> None:
    endpoints = {r.name: r.inputs for r in plan.of_type(ENDPOINT)}
    assert {n for n in endpoints if n.startswith("dev-")} == {"dev-s3", "dev-dynamodb"}
    assert {n for n in endpoints if n.startswith("prod-")} == {"prod-s3", "prod-dynamodb", "prod-ecr-api",
                                                                "prod-logs"}
    assert not [n for n in endpoints if n.startswith("closed-")]
    assert endpoints["dev-s3"]["vpcEndpointType"] == "Gateway"
    assert endpoints["dev-s3"]["serviceName"] == "com.amazonaws.us-east-1.s3"
    logs = endpoints["prod-logs"]
    assert (logs["vpcEndpointType"], logs["privateDnsEnabled"]) == ("Interface", True)
    assert logs["securityGroupIds"] == [plan.one("aws:ec2/securityGroup:SecurityGroup", "prod-endpoints").id]
    rule = plan.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "prod-endpoints-https").inputs
    assert (rule["cidrIpv4"], rule["fromPort"], rule["toPort"]) == ("10.50.0.0/16", 443, 443)


def test_flow_logs_go_to_a_log_group_with_retention(plan: Plan) -> None:
    for network, days, traffic in (("dev", 30, "REJECT"), ("prod", 365, "ALL")):
        group = plan.one("aws:cloudwatch/logGroup:LogGroup", f"{network}-flow-logs")
        assert group.inputs["retentionInDays"] == days
        assert group.inputs["name"] == f"/agent-infra/agent-infra/prod/{network}/flow-logs"
        flow = plan.one("aws:ec2/flowLog:FlowLog", f"{network}-flow-log").inputs
        assert flow["trafficType"] == traffic
        assert (flow["logDestinationType"], flow["logDestination"]) == ("cloud-watch-logs", group.outputs["arn"])
    statement = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "prod-flow-logs").inputs["policy"])["Statement"]
    arn = plan.one("aws:cloudwatch/logGroup:LogGroup", "prod-flow-logs").outputs["arn"]
    assert statement == [{"Sid": "WriteFlowLogs", "Effect": "Allow", "Action": [
        "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"], "Resource": [arn, f"{arn}:*"]}]


@pytest.mark.parametrize(("args", "message"), [
    ({"cidr_block": "10.0.0.0/8"}, "net.cidr_block: must be a /16 to /24, got /8"),
    ({"flow_log_retention_days": 10}, "net.flow_log_retention_days: must be a CloudWatch retention"),
    ({"availability_zones": 4}, "net.availability_zones: Input should be less than or equal to 3"),
])
def test_bad_args_name_the_field(args: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        Network("net", args)
    assert error.value.problems[0].startswith(message)
