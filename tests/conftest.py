"""Shared fixtures: the repository root and an offline-plan helper for component tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from agent_infra.offline import Plan, synthesize

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def deployment(**overrides: Any) -> dict[str, Any]:
    """A minimal valid deployment dict with overrides merged one level deep."""
    base: dict[str, Any] = {"cloud": "aws", "topology": "serverless", "environment": "dev"}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


class PlanRunner:
    """`plan.run(fn)` synthesizes `fn` offline and keeps the result for assertions."""

    def __init__(self) -> None:
        self.result: Plan | None = None

    def run(self, program: Callable[[], Any], **kwargs: Any) -> Plan:
        self.result = synthesize(program, **kwargs)
        return self.result


@pytest.fixture
def plan() -> PlanRunner:
    return PlanRunner()
