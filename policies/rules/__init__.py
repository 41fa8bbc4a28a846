"""Every agent-infra policy, one module per area. `ALL_RULES` is what the pack and the offline
runner evaluate; add a rule by decorating a function in its area module."""

from __future__ import annotations

from ..engine import Rule
from . import containers, data, iam, network, observability, secrets, stack, traffic

ALL_RULES: list[Rule] = [
    *secrets.RULES, *traffic.RULES, *observability.RULES, *data.RULES, *iam.RULES, *network.RULES,
    *containers.RULES, *stack.RULES,
]


def rule(name: str) -> Rule:
    """The rule with that id; raises `KeyError` naming the known ids."""
    for candidate in ALL_RULES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no policy {name!r}; known: {', '.join(sorted(r.name for r in ALL_RULES))}")


__all__ = ["ALL_RULES", "rule"]
