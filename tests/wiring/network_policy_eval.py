"""Kubernetes NetworkPolicy semantics, evaluated over rendered policies (networking.k8s.io/v1):

* a pod is isolated for ingress (egress) when a policy in its namespace selects it and lists
  `Ingress` (`Egress`) in `policyTypes`; then only flows some such policy allows pass;
* a rule's peers: `podSelector` (pods of the policy's namespace), `namespaceSelector` (all pods of
  matching namespaces), both together (matching pods in matching namespaces), `ipBlock` (cidr
  minus `except`, for traffic to addresses outside the cluster's pods);
* a rule's `ports` (protocol default TCP, port number or the container port's name); no `ports`
  means all ports; an empty `from`/`to` list or none at all means all peers.
A flow passes when the source's egress and the destination's ingress both allow it; pods in
namespaces without policies here (ingress-nginx, keda, kube-system) are not isolated by us.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, int, str], ...] = ()
    """(name, number, protocol) of named container ports."""

    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class Address:
    """An address outside the cluster's pods (a model endpoint, the metadata service)."""

    name: str
    ip: str


Endpoint = Pod | Address


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def peer_matches(peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, Address):
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", []))
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), other.label_map())


def port_matches(ports: list[dict[str, Any]] | None, target: Pod | Address, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None or wanted == port:
            return True
        if isinstance(wanted, str) and isinstance(target, Pod) and (wanted, port, protocol) in target.ports:
            return True
    return False


@dataclass
class Cluster:
    policies: list[dict[str, Any]]
    pods: list[Pod] = field(default_factory=list)

    def _applicable(self, pod: Pod, kind: str) -> list[dict[str, Any]]:
        return [p for p in self.policies if p["metadata"]["namespace"] == pod.namespace
                and kind in p["spec"].get("policyTypes", ["Ingress"])
                and selects(p["spec"]["podSelector"], pod.label_map())]

    def _side(self, pod: Pod, kind: str, other: Endpoint, target: Pod | Address, port: int, protocol: str) -> bool:
        policies = self._applicable(pod, kind)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                if (not peers or any(peer_matches(p, policy["metadata"]["namespace"], other) for p in peers)) \
                        and port_matches(rule.get("ports"), target, port, protocol):
                    return True
        return False

    def allows(self, source: Pod, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        if not self._side(source, "Egress", destination, destination, port, protocol):
            return False
        if isinstance(destination, Pod):
            return self._side(destination, "Ingress", source, destination, port, protocol)
        return True
