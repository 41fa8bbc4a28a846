"""GCP labels from the stack's tags: lower-case keys and values, only `[a-z0-9_-]`, at most 63
characters, keys starting with a letter (the Resource Manager label rules)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_INVALID = re.compile(r"[^a-z0-9_-]+")


def _clean(text: str) -> str:
    return _INVALID.sub("_", text.lower())[:63]


def gcp_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """`{"Cost Center": "AI Agents"}` -> `{"cost_center": "ai_agents"}`; keys not starting with a
    letter get a `t_` prefix; empty keys are dropped."""
    labels: dict[str, str] = {}
    for key, value in tags.items():
        clean_key = _clean(key)
        if not clean_key:
            continue
        if not clean_key[0].isalpha():
            clean_key = ("t_" + clean_key)[:63]
        labels[clean_key] = _clean(value)
    return labels
