"""Only the public load balancer's listener ports are open to the internet."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..engine import Context, Finding, Resource, Rule, is_unknown
from ._common import (
    LISTENERS,
    LOAD_BALANCERS,
    SECURITY_GROUP,
    SECURITY_GROUP_INGRESS,
    SECURITY_GROUP_RULE,
    as_dict,
    as_list,
    number,
    of_type,
    stack_rule,
)
from .traffic import is_public_load_balancer

RULES: list[Rule] = []

OPEN = ("0.0.0.0/0", "::/0")


def _open_ranges(entry: Any) -> list[tuple[float | None, float | None, str]]:
    """(fromPort, toPort, cidr) for each world-open source of one ingress entry."""
    entry = as_dict(entry)
    cidrs = [*as_list(entry.get("cidrBlocks")), *as_list(entry.get("ipv6CidrBlocks")),
             entry.get("cidrIpv4"), entry.get("cidrIpv6")]
    low, high = number(entry.get("fromPort")), number(entry.get("toPort"))
    return [(low, high, c) for c in cidrs if c in OPEN]


def _allowed(low: float | None, high: float | None, protocol: Any, ports: set[float]) -> bool:
    if protocol in ("-1", "all", -1) or low is None:
        return False
    high = high if high is not None else low
    return all(p in ports for p in range(int(low), int(high) + 1)) if high - low < 1024 else False


@stack_rule(
    RULES, name="no-public-ingress", area="network", level="mandatory", severity="critical",
    description="Checks whether security groups allow ingress from 0.0.0.0/0 or ::/0 only to a public load "
                "balancer's listener ports.",
    remediation="Restrict the rule's source to the load balancer's security group or a VPC CIDR; only the "
                "internet-facing load balancer's security group may accept 0.0.0.0/0, on its listener ports.",
    config={"allowedPorts": {"type": "array", "items": {"type": "number"}, "default": [],
                             "description": "Extra ports that may be open to the world on any security group."}},
)
def no_public_ingress(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    listener_ports: dict[str, set[float]] = {}  # security group URN -> ports of the public LBs using it
    listeners = of_type(resources, LISTENERS)
    for lb in of_type(resources, LOAD_BALANCERS):
        if not is_public_load_balancer(lb):
            continue
        ports = {p for p in (number(li.get("port")) for li in listeners if lb.urn in li.dependencies) if p is not None}
        for group in of_type(resources, SECURITY_GROUP):
            if group.urn in lb.dependencies:
                listener_ports.setdefault(group.urn, set()).update(ports)
    extra = {float(p) for p in ctx["allowedPorts"]}

    def check(owner: Resource | None, rule: Resource, entry: Any, where: str) -> Iterator[Finding]:
        ports = (listener_ports.get(owner.urn, set()) if owner else set()) | extra
        for low, high, cidr in _open_ranges(entry):
            protocol = as_dict(entry).get("protocol", as_dict(entry).get("ipProtocol"))
            if not _allowed(low, high, protocol, ports):
                span = "all ports" if low is None or protocol in ("-1", -1) else (
                    f"port {int(low)}" if high in (None, low) else f"ports {int(low)}-{int(high or low)}")
                yield Finding(f"{where}allows ingress from {cidr} to {span}", urn=rule.urn)

    groups = of_type(resources, SECURITY_GROUP)
    for group in groups:
        ingress = group.get("ingress")
        if is_unknown(ingress):
            continue
        for index, entry in enumerate(as_list(ingress)):
            yield from check(group, group, entry, f"ingress[{index}] ")
    for rule in of_type(resources, [SECURITY_GROUP_RULE, SECURITY_GROUP_INGRESS]):
        if rule.type == SECURITY_GROUP_RULE and rule.get("type") != "ingress":
            continue
        owner = next((g for g in groups if g.urn in rule.dependencies), None)
        yield from check(owner, rule, rule.props, "")
