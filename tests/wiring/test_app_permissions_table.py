"""One table of what each adapter needs from IAM (tests/wiring/aws_calls.ADAPTER_ACTIONS), held
both ways: the calls the adapters really make (recorded against moto by the wiring tests) fit
their rows, and every workload role in the AWS plans grants nothing beyond the rows of the
adapters that workload runs."""

from __future__ import annotations

import json

import pytest

from tests.wiring.aws_calls import ADAPTER_ACTIONS, PLATFORM_ACTIONS
from tests.wiring.harness import revealed_plan

WORKLOAD_ADAPTERS = {
    ("dev", "agent-api-policy"): ["queue.sqs.producer", "state.dynamodb", "settings.secret_arn"],
    ("dev", "agent-worker-policy"): ["queue.sqs.consumer", "state.dynamodb", "settings.secret_arn"],
    ("dev", "agent-ws-handler-policy"): ["state.dynamodb", "lambda.websocket", "settings.secret_arn"],
    ("prod", "agent-api-task"): ["queue.sqs.producer", "llm.bedrock"],
    ("prod", "agent-worker-task"): ["queue.sqs.consumer", "queue.sqs.dead_letter", "llm.bedrock",
                                    "worker.ecs_protection"],
}


@pytest.mark.parametrize(("stack", "policy"), sorted(WORKLOAD_ADAPTERS))
def test_roles_grant_only_what_their_adapters_call(stack: str, policy: str) -> None:
    doc = json.loads(revealed_plan(stack).one("aws:iam/rolePolicy:RolePolicy", policy).inputs["policy"])
    granted = {a for s in doc["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    needed = set().union(*(ADAPTER_ACTIONS[row] for row in WORKLOAD_ADAPTERS[(stack, policy)]))
    assert granted - PLATFORM_ACTIONS <= needed, f"{policy} grants more than its adapters call"


def rows_of(stack: str, policy: str) -> frozenset[str]:
    """The table's actions for one workload (used by the flow tests on their recorded calls)."""
    return frozenset().union(*(ADAPTER_ACTIONS[row] for row in WORKLOAD_ADAPTERS[(stack, policy)]))


def test_every_app_role_in_the_plans_is_in_the_table() -> None:
    app_roles = {("dev", p.name) for p in revealed_plan("dev").of_type("aws:iam/rolePolicy:RolePolicy")}
    app_roles |= {("prod", p.name) for p in revealed_plan("prod").of_type("aws:iam/rolePolicy:RolePolicy")
                  if p.name.endswith("-task")}
    assert app_roles == set(WORKLOAD_ADAPTERS)
