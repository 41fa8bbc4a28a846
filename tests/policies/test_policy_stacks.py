"""Every example stack in stacks/ passes every mandatory policy (a component change that breaks a
policy fails here). New stack files are picked up automatically."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_infra.offline import run_project
from agent_infra.policy_cli import check_plan

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))

# Mandatory violations that a stack is known to have, reported to the stack's owner; listed
# exactly so that a new violation fails, and so does fixing one without removing it here.
KNOWN_VIOLATIONS: dict[str, set[tuple[str, str | None]]] = {}


def test_example_stacks_exist() -> None:
    assert "dev" in STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_has_no_mandatory_violation(stack: str) -> None:
    report = check_plan(run_project(REPO, stack))
    found = {(v.policy, v.resource_name) for v in report.mandatory}
    details = "\n".join(f"{v.resource_name} ({v.resource_type}): {v.policy}: {v.message}" for v in report.mandatory)
    assert found == KNOWN_VIOLATIONS.get(stack, set()), details
