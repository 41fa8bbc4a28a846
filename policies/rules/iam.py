"""Least privilege: no statement grants every action on every resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..engine import UNKNOWN, Context, Resource, Rule, is_unknown, json_value
from ._common import IAM_ATTACHMENTS, IAM_POLICY_DOCUMENTS, IAM_ROLE, as_dict, as_list, resource_rule

RULES: list[Rule] = []

ADMIN_POLICIES = ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/PowerUserAccess",
                  "arn:aws:iam::aws:policy/IAMFullAccess")


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in as_list(value) if isinstance(v, str)]


def wildcard_statements(document: Any) -> Iterator[str]:
    """Sids (or positions) of Allow statements with `*` actions on `*` resources."""
    statements = as_dict(document).get("Statement")
    statements = [statements] if isinstance(statements, dict) else as_list(statements)
    for index, statement in enumerate(statements):
        statement = as_dict(statement)
        if statement.get("Effect", "Allow") != "Allow":
            continue
        actions = _strings(statement.get("Action"))
        resources = _strings(statement.get("Resource"))
        if any(a in ("*", "*:*") for a in actions) and "*" in resources:
            yield str(statement.get("Sid") or f"#{index}")


def documents(resource: Resource) -> Iterator[tuple[str, Any]]:
    if resource.type in IAM_POLICY_DOCUMENTS:
        yield "policy", json_value(resource.get("policy"))
    elif resource.type == IAM_ROLE:
        for index, inline in enumerate(as_list(resource.get("inlinePolicies"))):
            yield f"inlinePolicies[{as_dict(inline).get('name') or index}]", json_value(as_dict(inline).get("policy"))


@resource_rule(
    RULES, name="iam-no-wildcard-admin", area="iam", level="mandatory", severity="critical",
    types=IAM_POLICY_DOCUMENTS | IAM_ATTACHMENTS | {IAM_ROLE},
    description="Checks whether IAM policies avoid granting every action on every resource.",
    remediation="List the exact actions and resource ARNs the role needs (the components' grant_* methods do); "
                "never attach AdministratorAccess or PowerUserAccess to a workload role.",
)
def iam_no_wildcard_admin(resource: Resource, ctx: Context) -> Iterator[str]:
    for where, document in documents(resource):
        if document is UNKNOWN or is_unknown(document):
            continue
        for sid in wildcard_statements(document):
            yield f"{where} statement {sid} allows Action '*' on Resource '*'"
    arns = _strings(resource.get("policyArn")) + _strings(resource.get("managedPolicyArns"))
    for arn in arns:
        if arn in ADMIN_POLICIES:
            yield f"attaches {arn.rsplit('/', 1)[-1]}"
