"""A regional WAF web ACL on the public entry point: a per-IP rate-based rule and AWS managed rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args

MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                       "AWSManagedRulesAmazonIpReputationList")
"""Core OWASP protections, known-bad inputs (Log4j and friends), and Amazon's IP reputation list."""


class WebAclArgs(ComponentArgs):
    """WAF web ACL associated with an ALB (or API Gateway stage). Cost: $5/month per ACL, $1/month
    per rule or managed group, $0.60 per million requests."""

    resource_arn: str | pulumi.Output[str] | None = None
    """The ALB or API Gateway stage ARN to protect. None: create the ACL only."""
    rate_limit_per_5_minutes: int = Field(2_000, ge=10, le=2_000_000_000)
    """Requests one client IP may send in any 5-minute window before it is blocked (WAF's unit).
    The topologies derive it from `rate_limits.requests_per_second`."""
    managed_rule_groups: list[str] = list(MANAGED_RULE_GROUPS)
    """AWS managed rule groups (vendor AWS) evaluated after the rate rule."""
    max_body_bytes_rule_excluded: bool = True
    """Count (not block) the common rule set's SizeRestrictions_BODY: agent prompts and tool results
    routinely exceed its 8 KB limit; the app enforces its own `AGENT_MAX_BODY_BYTES`."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["association", "web_acl"], Transform] = {}
    """Escape hatch per child role (`association`, `web_acl`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


class WebAcl(pulumi.ComponentResource):
    """`web_acl` and its `association` with the protected resource."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: WebAclArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(WebAclArgs, args, name)
        super().__init__("agent-infra:aws:WebAcl", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        rules: list[dict[str, Any]] = [{
            "name": "rate-per-ip", "priority": 0, "action": {"block": {}},
            "statement": {"rate_based_statement": {"limit": args.rate_limit_per_5_minutes,
                                                   "aggregate_key_type": "IP", "evaluation_window_sec": 300}},
            "visibility_config": _visibility(f"{name}-rate-per-ip")}]
        for priority, group in enumerate(args.managed_rule_groups, start=1):
            statement: dict[str, Any] = {"vendor_name": "AWS", "name": group}
            if group == "AWSManagedRulesCommonRuleSet" and args.max_body_bytes_rule_excluded:
                statement["rule_action_overrides"] = [{"name": "SizeRestrictions_BODY",
                                                       "action_to_use": {"count": {}}}]
            rules.append({"name": group, "priority": priority, "override_action": {"none": {}},
                          "statement": {"managed_rule_group_statement": statement},
                          "visibility_config": _visibility(f"{name}-{group}")})
        self.web_acl = child("web_acl", aws.wafv2.WebAcl, name, name=physical_name(name, 128), scope="REGIONAL",
                             default_action={"allow": {}}, rules=rules, visibility_config=_visibility(name))
        if args.resource_arn is not None:
            child("association", aws.wafv2.WebAclAssociation, f"{name}-association",
                  resource_arn=args.resource_arn, web_acl_arn=self.web_acl.arn)
        self.arn = self.web_acl.arn
        self.register_outputs({"arn": self.arn})
