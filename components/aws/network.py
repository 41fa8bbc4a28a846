"""A VPC for an agent deployment: public subnets for the load balancer only, private subnets for
tasks and data stores, cost-aware NAT egress, VPC endpoints and flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ..config import CLOUDWATCH_RETENTION_DAYS
from .iam import Grant, assume_role_policy, policy_document

DEFAULT_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "sqs", "monitoring", "ecs")
"""AWS APIs Fargate tasks call constantly (image pulls, logs, secrets, queue polling, metrics)."""


class NetworkArgs(ComponentArgs):
    """VPC across 2-3 AZs. Cost: each NAT gateway about $33/month plus $0.045/GB; each interface
    endpoint about $7.30/month per AZ plus $0.01/GB; gateway endpoints (S3, DynamoDB) are free."""

    cidr_block: str = "10.40.0.0/16"
    """VPC range (/16 to /24). Public and private subnets are /4 slices of it per AZ. Changing it
    replaces the VPC and everything in it."""
    availability_zones: int = Field(2, ge=2, le=3)
    """AZs to spread subnets over. Two is the minimum for an ALB and a multi-AZ database."""
    nat_gateways: Literal["none", "single", "per_az"] = "single"
    """Egress for private subnets. `single`: one NAT for all AZs (cheap, one AZ's outage cuts
    egress). `per_az`: one per AZ (production). `none`: no internet egress (AWS APIs via
    endpoints only; an external LLM API is then unreachable)."""
    interface_endpoints: list[str] = []
    """Interface endpoints (service suffixes such as `ecr.api`, `logs`, `secretsmanager`) so that
    traffic to AWS APIs skips NAT. Empty by default (cost); the topologies pass
    `DEFAULT_INTERFACE_ENDPOINTS` in production."""
    gateway_endpoints: list[Literal["s3", "dynamodb"]] = ["s3", "dynamodb"]
    """Free gateway endpoints: ECR image layers come from S3, so this alone saves most NAT bytes."""
    flow_log_retention_days: int = 30
    """Flow log retention (a CloudWatch-allowed value)."""
    flow_log_traffic: Literal["ALL", "REJECT", "ACCEPT"] = "REJECT"
    """Which traffic flow logs record. REJECT (default) catches blocked flows at a fraction of ALL's
    ingestion cost; use ALL for forensics."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["default_sg", "eip", "endpoint", "endpoint_sg", "endpoint_sg_rule", "flow_log", "flow_log_group", "flow_log_role", "igw", "nat", "private_routes", "private_subnet", "public_routes", "public_subnet", "vpc"], Transform] = {}
    """Escape hatch per child role (`default_sg`, `eip`, `endpoint`, `endpoint_sg`, `endpoint_sg_rule`, `flow_log`, `flow_log_group`, `flow_log_role`, `igw`, `nat`, `private_routes`, `private_subnet`, `public_routes`, `public_subnet`, `vpc`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @field_validator("cidr_block")
    @classmethod
    def _cidr(cls, value: str) -> str:
        network = ipaddress.ip_network(value, strict=True)
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"must be a /16 to /24, got /{network.prefixlen}")
        return value

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            raise ValueError(f"must be a CloudWatch retention ({', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))})")
        return value


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Public subnets take the first slices, private ones the second half: (public, private)."""
    network = ipaddress.ip_network(cidr)
    slices = list(network.subnets(new_prefix=network.prefixlen + 4))
    return [str(s) for s in slices[:zones]], [str(s) for s in slices[8:8 + zones]]


class Network(pulumi.ComponentResource):
    """`vpc`, `public_subnets` (ALB only), `private_subnets` (tasks, cache, database), NAT, endpoints."""

    vpc_id: pulumi.Output[str]
    cidr_block: str
    public_subnet_ids: list[pulumi.Output[str]]
    """For the internet-facing load balancer only; nothing else gets a public subnet."""
    private_subnet_ids: list[pulumi.Output[str]]
    """For Fargate tasks, ElastiCache, Aurora and OpenSearch endpoints."""

    def __init__(self, name: str, args: NetworkArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(NetworkArgs, args, name)
        super().__init__("agent-infra:aws:Network", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        self.cidr_block = args.cidr_block
        zones = aws.get_availability_zones_output(state="available").names
        region = aws.get_region_output().region

        self.vpc = child("vpc", aws.ec2.Vpc, name, cidr_block=args.cidr_block, enable_dns_support=True,
                         enable_dns_hostnames=True, tags={"Name": name})
        self.vpc_id = self.vpc.id
        # The default security group allows all traffic between its members: empty it.
        child("default_sg", aws.ec2.DefaultSecurityGroup, f"{name}-default", vpc_id=self.vpc.id,
              ingress=[], egress=[])
        self.igw = child("igw", aws.ec2.InternetGateway, f"{name}-igw", vpc_id=self.vpc.id)

        public_cidrs, private_cidrs = subnet_cidrs(args.cidr_block, args.availability_zones)
        self.public_subnets, self.private_subnets = [], []
        def zone(index: int) -> pulumi.Output[str]:
            return zones.apply(lambda names: names[index])

        for i in range(args.availability_zones):
            az = zone(i)
            self.public_subnets.append(child(
                "public_subnet", aws.ec2.Subnet, f"{name}-public-{i}", vpc_id=self.vpc.id,
                cidr_block=public_cidrs[i], availability_zone=az, map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{i}", "tier": "public"}))
            self.private_subnets.append(child(
                "private_subnet", aws.ec2.Subnet, f"{name}-private-{i}", vpc_id=self.vpc.id,
                cidr_block=private_cidrs[i], availability_zone=az, map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{i}", "tier": "private"}))
        self.public_subnet_ids = [s.id for s in self.public_subnets]
        self.private_subnet_ids = [s.id for s in self.private_subnets]

        public_rt = child("public_routes", aws.ec2.RouteTable, f"{name}-public", vpc_id=self.vpc.id,
                          routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": self.igw.id}])
        for i, subnet in enumerate(self.public_subnets):
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=subnet.id, route_table_id=public_rt.id,
                                          opts=pulumi.ResourceOptions(parent=self))

        nat_count = {"none": 0, "single": 1, "per_az": args.availability_zones}[args.nat_gateways]
        self.nat_gateways = []
        for i in range(nat_count):
            eip = child("eip", aws.ec2.Eip, f"{name}-nat-{i}", domain="vpc")
            self.nat_gateways.append(child("nat", aws.ec2.NatGateway, f"{name}-nat-{i}", allocation_id=eip.id,
                                           subnet_id=self.public_subnets[i].id,
                                           opts=pulumi.ResourceOptions(depends_on=[self.igw])))
        self.private_route_tables = []
        for i, subnet in enumerate(self.private_subnets):
            routes = []
            if self.nat_gateways:
                nat = self.nat_gateways[i % len(self.nat_gateways)]
                routes = [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}]
            rt = child("private_routes", aws.ec2.RouteTable, f"{name}-private-{i}", vpc_id=self.vpc.id, routes=routes)
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=rt.id,
                                          opts=pulumi.ResourceOptions(parent=self))
            self.private_route_tables.append(rt)

        def service_name(service: str) -> pulumi.Output[str]:
            return region.apply(lambda r: f"com.amazonaws.{r}.{service}")

        for service in args.gateway_endpoints:
            child("endpoint", aws.ec2.VpcEndpoint, f"{name}-{service}", vpc_id=self.vpc.id,
                  vpc_endpoint_type="Gateway",
                  service_name=service_name(service),
                  route_table_ids=[rt.id for rt in self.private_route_tables])
        self.endpoint_security_group = None
        if args.interface_endpoints:
            self.endpoint_security_group = child(
                "endpoint_sg", aws.ec2.SecurityGroup, f"{name}-endpoints", vpc_id=self.vpc.id,
                description="HTTPS from inside the VPC to AWS API endpoints")
            child("endpoint_sg_rule", aws.vpc.SecurityGroupIngressRule, f"{name}-endpoints-https",
                  security_group_id=self.endpoint_security_group.id, ip_protocol="tcp", from_port=443, to_port=443,
                  cidr_ipv4=args.cidr_block, description="AWS API calls from the VPC")
            for endpoint_service in args.interface_endpoints:
                child("endpoint", aws.ec2.VpcEndpoint, f"{name}-{endpoint_service.replace('.', '-')}", vpc_id=self.vpc.id,
                      vpc_endpoint_type="Interface", private_dns_enabled=True,
                      service_name=service_name(endpoint_service),
                      subnet_ids=self.private_subnet_ids, security_group_ids=[self.endpoint_security_group.id])

        log_group = child("flow_log_group", aws.cloudwatch.LogGroup, f"{name}-flow-logs",
                          name=f"/agent-infra/{pulumi.get_project()}/{pulumi.get_stack()}/{name}/flow-logs",
                          retention_in_days=args.flow_log_retention_days)
        role = child("flow_log_role", aws.iam.Role, f"{name}-flow-logs",
                     assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"))
        aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, opts=pulumi.ResourceOptions(parent=self),
                           policy=policy_document([Grant(
                               ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
                               (log_group.arn, log_group.arn.apply(lambda a: f"{a}:*")), "WriteFlowLogs")]))
        self.flow_log = child("flow_log", aws.ec2.FlowLog, f"{name}-flow-log", vpc_id=self.vpc.id,
                              traffic_type=args.flow_log_traffic, log_destination_type="cloud-watch-logs",
                              log_destination=log_group.arn, iam_role_arn=role.arn, max_aggregation_interval=600)
        self.register_outputs({"vpc_id": self.vpc_id, "public_subnet_ids": self.public_subnet_ids,
                               "private_subnet_ids": self.private_subnet_ids})
