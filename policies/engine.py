"""One evaluation core for both ways our policies run.

A rule is a plain function over a `Resource` view: a type token and camelCase properties, the
shape CrossGuard's `ResourceValidationArgs.props` has and the shape the offline plan's
`PlannedResource.inputs` has. `to_pulumi_policy` wraps a rule as a CrossGuard policy for the
pack (`policies/__main__.py`); `evaluate` runs the same rules over an offline plan. Both report
the same text, so `pulumi preview --policy-pack` and `agent-infra policy` agree.

Unknown values (computed during preview) never raise a violation: under the Pulumi CLI they
are the SDK's unknown sentinels (accessing them through the SDK's proxy raises), offline they
are the plan's `<computed>` mark. Both are normalized to `UNKNOWN`, and every rule skips a
check whose input is unknown (`is_unknown`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

UNKNOWN = "<computed>"
"""What an unknown value looks like to a rule (the offline plan's own mark)."""
SECRET = "[secret]"
"""A secret value, as the offline plan masks it."""

# The policy SDK's unknown sentinels (pulumi_policy/proxy.py), one per value kind.
_SDK_UNKNOWNS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
})
# The engine's own unknown marker on the wire (pulumi.runtime.rpc.UNKNOWN).
_WIRE_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Level = Literal["advisory", "mandatory", "disabled", "remediate"]
LEVELS: tuple[str, ...] = ("advisory", "mandatory", "disabled", "remediate")


def is_unknown(value: Any) -> bool:
    """True for a value that is not known until the update runs."""
    return isinstance(value, str) and (value == UNKNOWN or value in _SDK_UNKNOWNS)


def _is_unknown_output(value: Any) -> bool:
    """The SDK's `pulumi.output.Unknown` marker, which the offline plan can carry for an input
    computed from another resource's unknown output."""
    return type(value).__name__ == "Unknown" and type(value).__module__ == "pulumi.output"


def normalize(value: Any) -> Any:
    """Plain JSON-like data with every unknown turned into `UNKNOWN`.

    Accepts the SDK's proxies (unwrapped with the SDK's own serializer, which keeps the
    sentinels) and plain data from the offline plan.
    """
    if type(value).__name__ in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"):
        from pulumi_policy.deserialize import serialize_properties

        value = serialize_properties(value)
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if is_unknown(value) or _is_unknown_output(value):
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def dig(value: Any, path: str, default: Any = None) -> Any:
    """Value at a dotted path (`"defaultRouteSettings.throttlingRateLimit"`, `"ingress.0"`).

    Returns `UNKNOWN` when any step on the way is unknown, `default` when the path is absent.
    """
    for part in path.split(".") if path else []:
        if is_unknown(value):
            return UNKNOWN
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return default
    return UNKNOWN if is_unknown(value) else value


def json_value(value: Any) -> Any:
    """A property that holds JSON text (IAM policies, redrive policies, ECS container
    definitions), parsed; `UNKNOWN` if unknown or secret, None if absent or not JSON."""
    if is_unknown(value) or value == SECRET:
        return UNKNOWN
    if isinstance(value, Mapping | list):
        return value
    if not isinstance(value, str):
        return None
    try:
        return normalize(json.loads(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class Resource:
    """What a rule sees of one resource: the same under CrossGuard and offline."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    """camelCase inputs, unknowns as `UNKNOWN`."""
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on (stack rules use them to link resources)."""
    provider_props: Mapping[str, Any] = field(default_factory=dict)
    """Inputs of the explicit provider (for `defaultTags`), empty for the default provider."""

    def get(self, path: str, default: Any = None) -> Any:
        return dig(self.props, path, default)

    @property
    def label(self) -> str:
        return f"{self.type} {self.name!r}"


@dataclass(frozen=True)
class Finding:
    """One problem a rule found. `urn` names another resource (stack rules); `fix` overrides
    the rule's remediation with one specific to this finding."""

    message: str
    urn: str | None = None
    fix: str | None = None


@dataclass
class Context:
    """A rule's configuration (defaults merged with the user's) and the stack's tags."""

    config: Mapping[str, Any]
    stack_tags: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.config[key]


ResourceCheck = Callable[[Resource, Context], Iterable[str | Finding]]
StackCheck = Callable[[Sequence[Resource], Context], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """A policy: id, what it checks, how to fix it, its default level and its settings."""

    name: str
    """Kebab-case id, e.g. `queue-has-dlq`; the key in a policy config file."""
    description: str
    """`Checks whether ...`: the first line of every diagnostic."""
    remediation: str
    """What to change, in the user's terms."""
    level: Level
    """Default enforcement level."""
    area: str
    """Module under `policies/rules/` (secrets, network, containers...)."""
    kind: Literal["resource", "stack"]
    check: Callable[..., Iterable[Any]]
    types: frozenset[str] | None = None
    """Resource rules: the type tokens checked (None: every resource)."""
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """JSON-schema properties of the settings, each with a `default`."""
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    fixes: Mapping[str, str] = field(default_factory=dict)
    """Type token -> the remediation for that kind of resource (default: `remediation`)."""

    def defaults(self) -> dict[str, Any]:
        return {key: schema["default"] for key, schema in self.config.items() if "default" in schema}

    def context(self, user_config: Mapping[str, Any] | None, stack_tags: Mapping[str, str] | None = None) -> Context:
        merged = self.defaults()
        merged.update({k: v for k, v in (user_config or {}).items() if k != "enforcementLevel"})
        return Context(merged, dict(stack_tags or {}))

    def applies_to(self, resource_type: str) -> bool:
        return self.types is None or resource_type in self.types

    def run_resource(self, resource: Resource, ctx: Context) -> list[Finding]:
        if not self.applies_to(resource.type):
            return []
        return [f if isinstance(f, Finding) else Finding(f) for f in self.check(resource, ctx)]

    def run_stack(self, resources: Sequence[Resource], ctx: Context) -> list[Finding]:
        return list(self.check(resources, ctx))

    def fix_for(self, finding: Finding, resource_type: str | None = None) -> str:
        return finding.fix or self.fixes.get(resource_type or "", self.remediation)

    def report_text(self, finding: Finding, resource_type: str | None = None) -> str:
        """The message handed to CrossGuard's `report_violation` (it prepends the description)."""
        return f"{finding.message}\nRemediation: {self.fix_for(finding, resource_type)}"


@dataclass(frozen=True)
class Violation:
    """One reported problem, as the offline runner prints it."""

    policy: str
    level: str
    message: str
    remediation: str
    description: str
    urn: str | None
    """The offending resource (None: the stack as a whole)."""
    resource_type: str | None
    resource_name: str | None
    area: str
    severity: str

    @property
    def mandatory(self) -> bool:
        return self.level == "mandatory"

    @property
    def crossguard_message(self) -> str:
        """The diagnostic text the Pulumi CLI shows for this violation."""
        return f"{self.description}\n{self.message}\nRemediation: {self.remediation}"

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "level": self.level, "severity": self.severity, "area": self.area,
                "urn": self.urn, "resourceType": self.resource_type, "resourceName": self.resource_name,
                "message": self.message, "remediation": self.remediation, "description": self.description}


# --- Configuration: the Pulumi CLI's policy config shape ----------------------------------------

class PolicyConfigError(ValueError):
    """A policy config file names an unknown policy, setting or level."""


def resolve_config(rules: Sequence[Rule], raw: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Validate `{"policy": {"enforcementLevel": "advisory", ...props}}` (or `{"policy": "advisory"}`,
    or `{"all": "advisory"}`, as `pulumi preview --policy-pack-config` takes) into one entry per
    policy with `enforcementLevel` always set."""
    by_name = {rule.name: rule for rule in rules}
    resolved: dict[str, dict[str, Any]] = {rule.name: {"enforcementLevel": rule.level} for rule in rules}
    raw = dict(raw or {})
    problems: list[str] = []
    if "all" in raw:
        level = raw.pop("all")
        level = level.get("enforcementLevel") if isinstance(level, Mapping) else level
        if level not in LEVELS:
            problems.append(f"all: enforcement level must be one of {', '.join(LEVELS)}, got {level!r}")
        else:
            for entry in resolved.values():
                entry["enforcementLevel"] = level
    for name, value in raw.items():
        rule = by_name.get(name)
        if rule is None:
            problems.append(f"{name}: no such policy; known: {', '.join(sorted(by_name))}")
            continue
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, Mapping):
            problems.append(f"{name}: must be an enforcement level or a mapping, got {type(value).__name__}")
            continue
        for key, setting in value.items():
            if key == "enforcementLevel":
                if setting not in LEVELS:
                    problems.append(f"{name}.enforcementLevel: must be one of {', '.join(LEVELS)}, got {setting!r}")
                    continue
            elif key not in rule.config:
                known = ", ".join(sorted(rule.config)) or "none"
                problems.append(f"{name}.{key}: unknown setting; settings of {name}: {known}")
                continue
            resolved[name][key] = setting
    if problems:
        raise PolicyConfigError("\n".join(problems))
    return resolved


def effective_level(level: str) -> str:
    """Remediate-level policies that still find a violation report it as mandatory (as the SDK does)."""
    return "mandatory" if level == "remediate" else level


# --- Offline evaluation --------------------------------------------------------------------------

def evaluate(
    rules: Sequence[Rule],
    resources: Sequence[Resource],
    config: Mapping[str, Any] | None = None,
    stack_tags: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Run every enabled rule: resource rules per resource, stack rules once over all of them."""
    resolved = resolve_config(rules, config)
    by_urn = {r.urn: r for r in resources}
    out: list[Violation] = []
    for rule in rules:
        settings = resolved[rule.name]
        level = settings["enforcementLevel"]
        if level == "disabled":
            continue
        ctx = rule.context(settings, stack_tags)
        if rule.kind == "resource":
            pairs: Iterator[tuple[Resource | None, Finding]] = (
                (res, finding) for res in resources for finding in rule.run_resource(res, ctx))
        else:
            pairs = ((by_urn.get(f.urn) if f.urn else None, f) for f in rule.run_stack(resources, ctx))
        for res, finding in pairs:
            out.append(Violation(
                policy=rule.name, level=effective_level(level), message=finding.message,
                remediation=rule.fix_for(finding, res.type if res else None), description=rule.description,
                urn=res.urn if res else finding.urn, resource_type=res.type if res else None,
                resource_name=res.name if res else None, area=rule.area, severity=rule.severity))
    return out


def resources_from_plan(plan: Any) -> list[Resource]:
    """Views of an offline plan's resources (`agent_infra.offline.Plan`), provider inputs attached."""
    by_urn = {r.urn: r for r in plan.resources}
    views = []
    for r in plan.resources:
        provider = by_urn.get(r.provider) if r.provider else None
        views.append(Resource(type=r.type, name=r.name, urn=r.urn, props=normalize(r.inputs), parent=r.parent,
                              dependencies=tuple(r.dependencies),
                              provider_props=normalize(provider.inputs) if provider else {}))
    return views


# --- CrossGuard adapter --------------------------------------------------------------------------

def _provider_props(provider: Any) -> Mapping[str, Any]:
    return normalize(provider.props) if provider is not None else {}


def to_pulumi_policy(rule: Rule) -> Any:
    """The CrossGuard policy object for `rule` (imports pulumi_policy lazily)."""
    from pulumi_policy import (
        EnforcementLevel,
        PolicyConfigSchema,
        ResourceValidationArgs,
        ResourceValidationPolicy,
        Severity,
        StackValidationArgs,
        StackValidationPolicy,
    )

    schema = PolicyConfigSchema(properties={k: dict(v) for k, v in rule.config.items()}) if rule.config else None
    common: dict[str, Any] = {
        "enforcement_level": EnforcementLevel(rule.level),
        "config_schema": schema,
        "severity": Severity(rule.severity),
        "tags": [rule.area],
        "remediation_steps": rule.remediation,
    }
    if rule.kind == "resource":
        def validate_resource(args: ResourceValidationArgs, report: Callable[..., None]) -> None:
            if not rule.applies_to(args.resource_type):
                return
            view = Resource(type=args.resource_type, name=args.name, urn=args.urn, props=normalize(args.props),
                            parent=args.opts.parent if args.opts else None,
                            provider_props=_provider_props(args.provider))
            ctx = rule.context(args.get_config(), args.stack_tags)
            for finding in rule.run_resource(view, ctx):
                report(rule.report_text(finding, args.resource_type), None)

        return ResourceValidationPolicy(rule.name, rule.description, validate_resource, **common)

    def validate_stack(args: StackValidationArgs, report: Callable[..., None]) -> None:
        views = [Resource(type=r.resource_type, name=r.name, urn=r.urn, props=normalize(r.props),
                          parent=r.parent.urn if r.parent is not None else None,
                          dependencies=tuple(d.urn for d in r.dependencies),
                          provider_props=_provider_props(r.provider))
                 for r in args.resources]
        ctx = rule.context(args.get_config(), args.stack_tags)
        types = {view.urn: view.type for view in views}
        for finding in rule.run_stack(views, ctx):
            report(rule.report_text(finding, types.get(finding.urn or "")), finding.urn)

    return StackValidationPolicy(rule.name, rule.description, validate_stack, **common)
