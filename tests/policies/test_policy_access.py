"""Least-privilege IAM and security-group ingress."""

from __future__ import annotations

from agent_infra.policies.engine import UNKNOWN
from policy_helpers import dumps, messages, res

SG = "aws:ec2/securityGroup:SecurityGroup"
LB = "aws:lb/loadBalancer:LoadBalancer"


def test_iam_no_wildcard_admin() -> None:
    scoped = dumps({"Statement": [{"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": ["arn:aws:sqs:x"]},
                                  {"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    assert messages("iam-no-wildcard-admin", res("aws:iam/rolePolicy:RolePolicy", {"policy": scoped}),
                    res("aws:iam/policy:Policy", {"policy": UNKNOWN})) == []
    admin = dumps({"Statement": [{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}]})
    role = res("aws:iam/role:Role", {"inlinePolicies": [{"name": "inline", "policy": admin}]}, name="role")
    attachment = res("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                     {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, name="attach")
    assert messages("iam-no-wildcard-admin", res("aws:iam/rolePolicy:RolePolicy", {"policy": admin}, name="p"),
                    role, attachment) == [
        "p: policy statement All allows Action '*' on Resource '*'",
        "role: inlinePolicies[inline] statement All allows Action '*' on Resource '*'",
        "attach: attaches AdministratorAccess"]


def _world(port: int) -> dict[str, object]:
    return {"protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": ["0.0.0.0/0"]}


def test_no_public_ingress_allows_public_lb_listener_ports_only() -> None:
    lb_sg = res(SG, {"ingress": [_world(443)]}, name="lb-sg")
    lb = res(LB, {"internal": False, "securityGroups": [UNKNOWN]}, name="alb", deps=(lb_sg,))
    listener = res("aws:lb/listener:Listener", {"port": 443}, name="https", deps=(lb,))
    assert messages("no-public-ingress", lb_sg, lb, listener) == []
    app_sg = res(SG, {"ingress": [_world(22), {**_world(0), "protocol": "-1", "toPort": 0}]}, name="app-sg")
    rule = res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
               {"cidrIpv6": "::/0", "fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"}, name="db-rule",
               deps=(app_sg,))
    extra = res("aws:ec2/securityGroupRule:SecurityGroupRule", {"type": "ingress", **_world(80)}, name="http",
                deps=(lb_sg,))
    assert messages("no-public-ingress", lb_sg, lb, listener, app_sg, rule, extra) == [
        "app-sg: ingress[0] allows ingress from 0.0.0.0/0 to port 22",
        "app-sg: ingress[1] allows ingress from 0.0.0.0/0 to all ports",
        "db-rule: allows ingress from ::/0 to port 5432",
        "http: allows ingress from 0.0.0.0/0 to port 80"]
    assert messages("no-public-ingress", lb_sg, lb, extra, config={"allowedPorts": [80, 443]}) == []
