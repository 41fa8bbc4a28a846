"""A Pulumi plan's AWS resources as a Terraform plan JSON (`terraform show -json` layout), so an
IaC scanner that reads Terraform plans (checkov's `terraform_plan` framework) scans what the stack
would deploy. pulumi-aws is generated from the Terraform AWS provider: each type token maps to its
Terraform resource type and each camelCase input to the provider's snake_case attribute."""

from __future__ import annotations

import json
import re
from typing import Any

from agent_infra.offline import Plan

MODULE_DROPPED = {"ec2", "vpc"}
"""Modules whose Terraform names carry no module prefix (`aws:ec2/securityGroup` -> `aws_security_group`)."""
RENAMED = {"aws:lb/loadBalancer:LoadBalancer": "aws_lb", "aws:lb/targetGroup:TargetGroup": "aws_lb_target_group",
           "aws:lb/listener:Listener": "aws_lb_listener",
           "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
           "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "aws_vpc_security_group_egress_rule"}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def terraform_type(token: str) -> str | None:
    if token in RENAMED:
        return RENAMED[token]
    provider, path, _ = token.split(":")
    if provider != "aws":
        return None
    module, member = path.split("/")
    module = module.rstrip("_")
    resource = snake(member)
    if module in MODULE_DROPPED:
        return f"aws_{resource}"
    if resource.startswith(module):
        return f"aws_{resource}"
    return f"aws_{module}_{resource}"


def values(value: Any) -> Any:
    if isinstance(value, dict):
        return {snake(k): values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [values(v) for v in value]
    return value


def to_terraform_plan(plan: Plan) -> dict[str, Any]:
    resources = []
    for resource in plan.custom_resources():
        tf_type = terraform_type(resource.type)
        if tf_type is None:
            continue
        name = re.sub(r"[^A-Za-z0-9_]", "_", resource.name)
        body = values(resource.inputs)
        body.setdefault("arn", resource.outputs.get("arn"))
        resources.append({"address": f"{tf_type}.{name}", "mode": "managed", "type": tf_type, "name": name,
                          "provider_name": "registry.terraform.io/hashicorp/aws", "values": body})
    return {"format_version": "1.2", "terraform_version": "1.9.0",
            "planned_values": {"root_module": {"resources": resources}},
            "resource_changes": [{"address": r["address"], "mode": "managed", "type": r["type"], "name": r["name"],
                                  "change": {"actions": ["create"], "before": None, "after": r["values"], "after_unknown": {}}} for r in resources],
            "configuration": {"root_module": {"resources": [
                {"address": r["address"], "mode": "managed", "type": r["type"], "name": r["name"], "expressions": {}}
                for r in resources]}}}


def dump(plan: Plan, path: str) -> None:
    with open(path, "w") as out:
        json.dump(to_terraform_plan(plan), out)
