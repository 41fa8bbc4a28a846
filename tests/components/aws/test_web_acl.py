"""WebAcl block on the offline plan: per-IP rate rule first with the configured limit, AWS managed groups,
the association with the protected resource."""

from __future__ import annotations

import pytest
from agent_infra.components.aws import WebAcl
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

ACL = "aws:wafv2/webAcl:WebAcl"
ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/agent/1"


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        WebAcl("edge", {"resource_arn": ALB, "rate_limit_per_5_minutes": 15_000})
        WebAcl("bare", {"managed_rule_groups": [], "max_body_bytes_rule_excluded": False})
    return synthesize(program, stack="prod")


def test_rate_rule_blocks_per_ip_at_the_configured_limit(plan: Plan) -> None:
    rate = plan.one(ACL, "edge").inputs["rules"][0]
    assert (rate["name"], rate["priority"], rate["action"]) == ("rate-per-ip", 0, {"block": {}})
    assert rate["statement"]["rateBasedStatement"] == {"limit": 15_000, "aggregateKeyType": "IP",
                                                       "evaluationWindowSec": 300}
    assert plan.one(ACL, "bare").inputs["rules"][0]["statement"]["rateBasedStatement"]["limit"] == 2_000


def test_managed_groups_follow_the_rate_rule(plan: Plan) -> None:
    acl = plan.one(ACL, "edge").inputs
    assert acl["scope"] == "REGIONAL" and acl["defaultAction"] == {"allow": {}}
    groups = [(r["priority"], r["statement"]["managedRuleGroupStatement"]["name"]) for r in acl["rules"][1:]]
    assert groups == [(1, "AWSManagedRulesCommonRuleSet"), (2, "AWSManagedRulesKnownBadInputsRuleSet"),
                      (3, "AWSManagedRulesAmazonIpReputationList")]
    common = acl["rules"][1]["statement"]["managedRuleGroupStatement"]
    # Agent prompts exceed the common set's 8 KB body rule: counted, not blocked.
    assert common["ruleActionOverrides"] == [{"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}]
    assert all(r["visibilityConfig"]["cloudwatchMetricsEnabled"] is True for r in acl["rules"])
    assert len(plan.one(ACL, "bare").inputs["rules"]) == 1


def test_association_only_with_a_resource(plan: Plan) -> None:
    association = plan.one("aws:wafv2/webAclAssociation:WebAclAssociation").inputs
    assert association == {"resourceArn": ALB, "webAclArn": plan.one(ACL, "edge").outputs["arn"]}


def test_rate_limit_below_wafs_minimum_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"edge.rate_limit_per_5_minutes: Input should be greater than or equal to 10"):
        WebAcl("edge", {"rate_limit_per_5_minutes": 5})
