"""Build `Resource` views by hand and run one policy over them (offline engine)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent_infra.policies.engine import Resource, Violation, evaluate, normalize
from agent_infra.policies.rules import rule


def res(type_: str, props: Mapping[str, Any] | None = None, name: str = "r", deps: tuple[Any, ...] = (),
        provider: Mapping[str, Any] | None = None) -> Resource:
    """A resource view; `deps` are other views (or URNs) it references."""
    return Resource(type=type_, name=name, urn=f"urn:pulumi:test::proj::{type_}::{name}", props=normalize(props or {}),
                    dependencies=tuple(d.urn if isinstance(d, Resource) else d for d in deps),
                    provider_props=provider or {})


def violations(policy: str, *resources: Resource, config: Mapping[str, Any] | None = None) -> list[Violation]:
    return evaluate([rule(policy)], list(resources), {policy: dict(config)} if config else None)


def messages(policy: str, *resources: Resource, config: Mapping[str, Any] | None = None) -> list[str]:
    """`name: message` per violation (`stack: message` for stack-wide ones)."""
    return [f"{v.resource_name or 'stack'}: {v.message}" for v in violations(policy, *resources, config=config)]


def dumps(value: Any) -> str:
    return json.dumps(value)
