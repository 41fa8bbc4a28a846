"""Least-privilege IAM helpers shared by AWS blocks: exact actions on exact ARNs, no wildcards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass(frozen=True)
class Grant:
    """One IAM statement: `actions` allowed on `resources` (ARNs, possibly Outputs)."""

    actions: tuple[str, ...]
    resources: tuple[Any, ...]
    sid: str | None = None


def policy_document(grants: Sequence[Grant]) -> pulumi.Output[str]:
    """Render grants into an IAM policy JSON (statements sorted for stable diffs).

    IAM rejects a policy whose statements share a Sid (`MalformedPolicyDocument`), so a clash is
    refused here, at plan time, naming the Sid."""
    sids = [g.sid for g in grants if g.sid]
    clashes = sorted({sid for sid in sids if sids.count(sid) > 1})
    if clashes:
        raise ValueError(f"IAM policy: statement ids must be unique, {', '.join(clashes)} used more than once")

    def render(resolved: list[list[str]]) -> str:
        statements = []
        for grant, resources in zip(grants, resolved, strict=True):
            statement: dict[str, Any] = {"Effect": "Allow", "Action": sorted(set(grant.actions)),
                                         "Resource": sorted(set(resources))}
            if grant.sid:
                statement["Sid"] = grant.sid
            statements.append(statement)
        return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)

    return pulumi.Output.all(*[pulumi.Output.all(*g.resources) for g in grants]).apply(render)


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service principal assume the role."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
