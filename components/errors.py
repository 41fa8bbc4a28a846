"""Errors a user can act on: the config path, the value, what is allowed and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pulumi
from pydantic import ValidationError


class ConfigError(pulumi.RunError):
    """A deployment config or component argument is invalid.

    It subclasses `pulumi.RunError` so that, under the Pulumi CLI, the program stops with the
    message alone instead of a Python traceback. `problems` holds one line per invalid key.
    """

    origin: str = "arguments"
    """Where the bad values came from: `"arguments"` (a component's Python arguments) or `"stack"`
    (the stack's config: `load_stack_deployment`, or a program that says so with `from_stack`)."""

    def __init__(self, problems: str | Iterable[str], *, origin: str = "arguments") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.origin = origin
        super().__init__("\n".join(self.problems))

    def from_stack(self) -> ConfigError:
        """The same problems, marked as coming from the stack's config."""
        return ConfigError(self.problems, origin="stack")


def _format_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_location(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith(("function-", "union[", "tagged-union[")):
            continue  # pydantic's internal validator names are noise to a user
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "(root)"


def problems_from_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """One line per pydantic error: `path.to.key: what is wrong (got value)`."""
    lines = []
    for item in error.errors(include_url=False):
        loc = _format_location(prefix, tuple(item["loc"]))
        message = item["msg"]
        for noise in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(noise)
        if loc.endswith(".[key]") and item["type"] == "literal_error":
            # A dict key outside its Literal: today only `transforms` roles are typed this way.
            loc = loc.removesuffix(".[key]")
            message = (f"unknown role {item.get('input')!r}; this component's roles: "
                       + item.get("ctx", {}).get("expected", "").replace("'", ""))
        elif item["type"] == "extra_forbidden":
            message = "unknown key; check the spelling (see `agent-infra schema`)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif "input" in item and item["type"] not in ("value_error", "assertion_error"):
            message = f"{message}, got {_format_value(item['input'])}"
        lines.append(f"{loc}: {message}")
    return lines
