"""Every IAM document in every AWS example stack, checked by tools nobody here wrote:

* parliament (duo-labs) audits each identity policy: unknown actions, duplicate Sids, malformed
  statements, resources that cannot apply to an action;
* policy_sentry's copy of AWS's Service Authorization Reference gives each action's resource ARN
  formats; every (action, resource) a statement names must fit one of them.

Deliberate exceptions, each a false positive of the linter, not of the policy:
* parliament's RESOURCE_MISMATCH demands a statement match *every* resource type of an action;
  an action such as `bedrock:InvokeModel` takes one of several (foundation-model OR
  inference-profile ...). policy_sentry's per-pair check below replaces it.
* resource-based policies (KMS key, SNS topic policies) use `Resource: "*"` to mean "this
  resource" (AWS KMS: "In a key policy, the value of the Resource element is \"*\", which means
  this KMS key"): RESOURCE_STAR is not a finding there; trust policies have no Resource at all.
"""

from __future__ import annotations

import gc
import json
import warnings
from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data

with warnings.catch_warnings():
    # parliament opens its bundled config.yaml and iam_definition.json without closing them.
    warnings.simplefilter("ignore", ResourceWarning)
    from parliament import analyze_policy_string, is_arn_match

    gc.collect()

from tests.wiring.harness import revealed_plan

STACKS = ["dev", "prod"]
IDENTITY_POLICY_TYPES = {"aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"}


def documents(stack: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource type, resource name, document) for every policy document input of the plan."""
    found = []
    for resource in revealed_plan(stack):
        if not resource.type.startswith("aws:"):
            continue
        for key, value in resource.inputs.items():
            if isinstance(value, str) and '"Statement"' in value:
                found.append((f"{resource.type}.{key}", resource.name, json.loads(value)))
    return found


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    body = doc["Statement"]
    return body if isinstance(body, list) else [body]


def as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stack", STACKS)
def test_parliament_finds_nothing(stack: str) -> None:
    problems = []
    for kind, name, doc in documents(stack):
        if kind.endswith(".assumeRolePolicy"):
            continue  # trust policies: checked below
        identity = kind.split(".")[0] in IDENTITY_POLICY_TYPES
        for finding in analyze_policy_string(json.dumps(doc), ignore_private_auditors=True).findings:
            if finding.issue == "RESOURCE_MISMATCH" or (finding.issue == "RESOURCE_STAR" and not identity):
                continue
            problems.append(f"{name} ({kind}): {finding.issue} {finding.detail}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_sids_are_unique_and_every_action_exists_with_a_fitting_resource(stack: str) -> None:
    problems = []
    for kind, name, doc in documents(stack):
        sids = [s["Sid"] for s in statements(doc) if "Sid" in s]
        if len(sids) != len(set(sids)):
            problems.append(f"{name} ({kind}): repeated Sid in {sids}")
        if kind.split(".")[0] not in IDENTITY_POLICY_TYPES:
            continue
        for statement in statements(doc):
            # IAM evaluates each (action, resource) pair: an action needs a resource it applies to,
            # and a resource that fits none of the statement's actions grants nothing.
            resources = as_list(statement["Resource"])
            fitting: set[str] = set()
            for action in as_list(statement["Action"]):
                service, _, verb = action.partition(":")
                known = get_action_data(service, verb).get(service) or []
                if not known:
                    problems.append(f"{name}: {action} is not an IAM action")
                    continue
                formats = {entry["resource_arn_format"] for entry in known}
                fits = {r for r in resources if (r == "*" and "*" in formats)
                        or any(fmt != "*" and is_arn_match("", _glob(fmt), r) for fmt in formats)}
                if not fits:
                    problems.append(f"{name}: {action} applies to none of {resources} (formats: {sorted(formats)})")
                fitting |= fits
            for resource in sorted(set(resources) - fitting):
                problems.append(f"{name}: {resource} fits none of the statement's actions")
    assert not problems, "\n".join(problems)


def _glob(arn_format: str) -> str:
    """`arn:${Partition}:sqs:${Region}:${Account}:${QueueName}` -> `arn:*:sqs:*:*:*`."""
    import re

    return re.sub(r"\$\{[^}]+\}", "*", arn_format)


@pytest.mark.parametrize("stack", STACKS)
def test_trust_policies_let_one_service_assume_the_role(stack: str) -> None:
    for kind, name, doc in documents(stack):
        if not kind.endswith(".assumeRolePolicy"):
            continue
        for statement in statements(doc):
            assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole", name
            assert set(statement["Principal"]) == {"Service"}, name
            assert str(statement["Principal"]["Service"]).endswith(".amazonaws.com"), name


def test_the_linters_catch_what_iam_rejects() -> None:
    bad = {"Version": "2012-10-17", "Statement": [
        {"Sid": "SessionState", "Effect": "Allow", "Action": ["dynamodb:TransactWriteItems"],
         "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/a"]},
        {"Sid": "SessionState", "Effect": "Allow", "Action": ["dynamodb:GetItem"],
         "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/b"]}]}
    issues = {f.issue for f in analyze_policy_string(json.dumps(bad)).findings}
    assert {"DUPLICATE_SID", "UNKNOWN_ACTION"} <= issues
    assert not get_action_data("dynamodb", "TransactWriteItems").get("dynamodb")
