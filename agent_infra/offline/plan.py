"""A plan: every resource a program registers (type, name, inputs, parent, provider, outputs) and the
stack outputs, with the queries tests and policies use (`one`, `find`, `children`, ...)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SECRET_MASK = "[secret]"
UNKNOWN_MARK = "<computed>"
STACK_TYPE = "pulumi:pulumi:Stack"
PLACEHOLDER_NOTE = ("offline preview: ids, ARNs, URLs, endpoints, account ids and image digests that a cloud would "
                    "compute are invented by the offline engine (e.g. account 123456789012); values listed here "
                    "and every cloud resource's outputs are placeholders until `pulumi up`")


@dataclass
class PlannedResource:
    """One registered resource, as the engine would have seen it."""

    type: str
    """Type token, e.g. `aws:sqs/queue:Queue` or `agent-infra:aws:Queue`."""
    name: str
    """Logical name."""
    urn: str
    parent: str | None
    """URN of the parent (a component or the stack)."""
    provider: str | None
    """URN of the explicit provider, if one was passed."""
    custom: bool
    """True for cloud resources, False for components."""
    inputs: dict[str, Any]
    """Inputs in the provider's camelCase, secrets masked as `[secret]`, unknowns `<computed>`."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Registered outputs (components) or the mocked provider outputs (custom resources)."""
    id: str | None = None
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    aliases: list[str] = field(default_factory=list)
    secret_paths: list[str] = field(default_factory=list)
    """Dotted input paths whose values were secret (masked in `inputs`)."""

    def get(self, path: str, default: Any = None) -> Any:
        """Input at a dotted path: `res.get("redrivePolicy")`, `res.get("tags.environment")`."""
        value: Any = self.inputs
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return default
        return value


@dataclass
class Plan:
    """Every resource a program registers, in order, and the stack outputs."""

    project: str
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    log: list[str] = field(default_factory=list)
    """Warnings and errors the program logged."""

    def __iter__(self) -> Iterator[PlannedResource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        """All resources of one type token."""
        return [r for r in self.resources if r.type == type_token]

    def find(self, name: str | None = None, type_token: str | None = None) -> list[PlannedResource]:
        """Resources matching a logical name and/or a type token."""
        return [r for r in self.resources
                if (name is None or r.name == name) and (type_token is None or r.type == type_token)]

    def one(self, type_token: str, name: str | None = None) -> PlannedResource:
        """Exactly one resource of that type (and name); raises `LookupError` otherwise."""
        found = self.find(name, type_token)
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_token))
            raise LookupError(f"expected one {type_token}{' named ' + name if name else ''}, found {len(found)}"
                              f" (of this type: {names})")
        return found[0]

    def by_urn(self, urn: str) -> PlannedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(f"no resource with URN {urn}")

    def children(self, parent: PlannedResource | str, recursive: bool = False) -> list[PlannedResource]:
        """Direct children of a component (or every descendant with `recursive=True`)."""
        parent_urn = parent if isinstance(parent, str) else parent.urn
        direct = [r for r in self.resources if r.parent == parent_urn]
        if not recursive:
            return direct
        out = []
        for child in direct:
            out.append(child)
            out.extend(self.children(child, recursive=True))
        return out

    def custom_resources(self) -> list[PlannedResource]:
        """Cloud resources only (no components)."""
        return [r for r in self.resources if r.custom]

    def count_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return dict(sorted(counts.items()))

    # --- Placeholders: what the offline engine invented --------------------------------------------

    def invented_values(self) -> list[str]:
        """Every value the mocks made up (a cloud resource's computed outputs: ARNs, URLs, endpoints,
        digests, auto-names), longest first. Echoed inputs are not among them: they are the program's."""
        def strings(value: Any, into: set[str]) -> set[str]:
            if isinstance(value, str) and len(value) >= 6 and value not in (SECRET_MASK, UNKNOWN_MARK):
                into.add(value)
            elif isinstance(value, Mapping):
                for item in value.values():
                    strings(item, into)
            elif isinstance(value, list):
                for item in value:
                    strings(item, into)
            return into

        computed: set[str] = set()
        for resource in self.resources:
            if resource.custom:  # `outputs` holds only what the mocks computed (echoed inputs are dropped)
                strings(resource.outputs, computed)
        return sorted(computed, key=lambda v: (-len(v), v))

    def placeholder_paths(self) -> dict[str, list[str]]:
        """Where invented values show: `{"outputs": [keys], "<urn>": [dotted input paths]}`."""
        invented = self.invented_values()
        if not invented:
            return {}
        pattern = re.compile("|".join(re.escape(v) for v in invented))
        found: dict[str, list[str]] = {}

        def walk(value: Any, path: str, into: list[str]) -> None:
            if isinstance(value, str):
                if pattern.search(value):
                    into.append(path)
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    walk(item, f"{path}.{key}" if path else str(key), into)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    walk(item, f"{path}.{index}", into)

        outputs: list[str] = []
        walk(self.outputs, "", outputs)
        if outputs:
            found["outputs"] = outputs
        for resource in self.resources:
            paths: list[str] = []
            walk(resource.inputs, "", paths)
            if paths:
                found[resource.urn] = paths
        return found

    def to_dict(self) -> dict[str, Any]:
        placeholders = self.placeholder_paths()
        resources = []
        for r in self.resources:
            item = asdict(r)
            item["placeholder_inputs"] = placeholders.get(r.urn, [])
            item["outputs_are_placeholders"] = r.custom  # computed by the mocks, every one
            resources.append(item)
        return {"project": self.project, "stack": self.stack, "outputs": self.outputs,
                "placeholders": {"note": PLACEHOLDER_NOTE, "outputs": placeholders.get("outputs", [])},
                "resources": resources, "log": self.log}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)


