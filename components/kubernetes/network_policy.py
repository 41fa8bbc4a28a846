"""`NetworkPolicies`: default deny, then exactly the agent's flows.

Allowed, and nothing else:
* ingress controller namespace -> API pods, on the app port;
* API and worker pods -> each data service (Redis, PostgreSQL, Qdrant) on its ports;
* API and worker pods -> the LLM provider, HTTPS (443) to `llm_egress_cidrs`;
* every pod -> cluster DNS (kube-system/kube-dns, 53 UDP/TCP);
* with KEDA: the KEDA operator -> Redis (it reads the stream's lag and pending counts it scales on);
* with a Prometheus namespace: Prometheus -> the API's `/metrics` on the app port;
* with CloudNativePG: the operator -> PostgreSQL pods (status 8000, 5432), replication between
  PostgreSQL pods, and PostgreSQL pods -> the Kubernetes API (443/6443).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import COMPONENT, INSTANCE, metadata, str_transforms

PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]
"""Excluded from 0.0.0.0/0 egress: cluster and VPC addresses and the cloud metadata endpoint."""
KEDA_OPERATOR_NAME = "keda-operator"
"""`app` label (the Deployment's selector) of the operator pods in KEDA's Helm chart (kedacore/charts)."""
KEDA_NAMESPACE = "keda"
"""Where KEDA's install docs put the operator (`helm install keda kedacore/keda --namespace keda`)."""
PROMETHEUS_NAMESPACE = "monitoring"
"""The kube-prometheus-stack convention."""


class DataService(ComponentArgs):
    """A data service the API and workers may reach."""

    name: Literal["redis", "postgres", "qdrant"]
    """Role; names the policy `<name>-<role>-ingress`."""
    selector: dict[str, str]
    """Labels of its pods."""
    ports: list[int]
    """TCP ports clients use."""


class NetworkPoliciesArgs(ComponentArgs):
    """The namespace's NetworkPolicies (needs a CNI that enforces them: Calico, Cilium, the
    cloud's network policy add-on). Cost: none."""

    namespace: str | pulumi.Output[str]
    """Namespace the policies guard."""
    instance: str
    """`app.kubernetes.io/instance` of the API and worker pods."""
    app_port: int = Field(8000, ge=1, le=65_535)
    """API container port the ingress controller reaches."""
    ingress_namespace: str = "ingress-nginx"
    """Namespace of the ingress controller pods."""
    data_services: list[DataService] = []
    """In-cluster data services (external ones are reached through `llm_egress_cidrs`-style egress rules
    you add with a transform)."""
    llm_egress_cidrs: list[str] = ["0.0.0.0/0"]
    """HTTPS destinations of the API and workers (the LLM provider, webhooks callbacks). `0.0.0.0/0`
    always excludes the private ranges and the metadata address."""
    cnpg_operator_namespace: str | None = None
    """Namespace of the CloudNativePG operator when PostgreSQL is a CNPG Cluster."""
    keda_operator_namespace: str | None = None
    """Namespace of the KEDA operator when a ScaledObject reads Redis: it may reach Redis (the
    operator pods of KEDA's Helm chart, selected by `app: keda-operator`). Without
    it workers scaled to zero never start: the operator cannot read the backlog."""
    prometheus_namespace: str | None = None
    """Namespace whose pods scrape the API's `/metrics` (app port). None: no scraping allowed."""
    labels: dict[str, str] = {}
    """Labels on the policies."""
    transforms: Mapping[str, Transform] = {}
    """Escape hatch per policy role (`default-deny`, `dns`, `api-ingress`, `app-egress`,
    `<service>-ingress`, `postgres-operator`): a dict merged into its args, or fn(args, opts)."""


def _cidr_peers(cidrs: list[str]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": cidr, "except": list(PRIVATE_RANGES)} if cidr == "0.0.0.0/0" else {"cidr": cidr}}
            for cidr in cidrs]


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


class NetworkPolicies(pulumi.ComponentResource):
    """One NetworkPolicy per flow, named `<name>-<role>`; `policies[role]` holds each."""

    def __init__(self, name: str, args: NetworkPoliciesArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(NetworkPoliciesArgs, args, "network_policies")
        super().__init__("agent-infra:kubernetes:NetworkPolicies", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.policies: dict[str, Any] = {}

        def policy(role: str, spec: dict[str, Any]) -> None:
            policy_name = f"{name}-{role}"
            self.policies[role] = child(role, k8s.networking.v1.NetworkPolicy, policy_name,
                                        metadata=metadata(policy_name, args.namespace, args.labels), spec=spec)

        api = {"matchLabels": {INSTANCE: args.instance, COMPONENT: "api"}}
        worker = {"matchLabels": {INSTANCE: args.instance, COMPONENT: "worker"}}
        app_pods = {"matchLabels": {INSTANCE: args.instance},
                    "matchExpressions": [{"key": COMPONENT, "operator": "In", "values": ["api", "worker"]}]}

        policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        policy("dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]})
        api_sources = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.ingress_namespace}}}]
        if args.prometheus_namespace:
            api_sources.append({"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": args.prometheus_namespace}}})
        policy("api-ingress", {"podSelector": api, "policyTypes": ["Ingress"], "ingress": [{
            "from": api_sources, "ports": _tcp(args.app_port)}]})
        egress = [{"to": [{"podSelector": {"matchLabels": dict(svc.selector)}}], "ports": _tcp(*svc.ports)}
                  for svc in args.data_services]
        egress.append({"to": _cidr_peers(args.llm_egress_cidrs), "ports": _tcp(443)})
        policy("app-egress", {"podSelector": app_pods, "policyTypes": ["Egress"], "egress": egress})
        for svc in args.data_services:
            rules: list[dict[str, Any]] = [{"from": [{"podSelector": api}, {"podSelector": worker}],
                                            "ports": _tcp(*svc.ports)}]
            if svc.name == "redis" and args.keda_operator_namespace:
                rules.append({"from": [{
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.keda_operator_namespace}},
                    "podSelector": {"matchLabels": {"app": KEDA_OPERATOR_NAME}}}],
                    "ports": _tcp(*svc.ports)})
            policy(f"{svc.name}-ingress", {"podSelector": {"matchLabels": dict(svc.selector)},
                                           "policyTypes": ["Ingress"], "ingress": rules})
            if svc.name == "postgres" and args.cnpg_operator_namespace:
                pg = {"podSelector": {"matchLabels": dict(svc.selector)}}
                operator = {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": args.cnpg_operator_namespace}}}
                policy("postgres-operator", {
                    "podSelector": {"matchLabels": dict(svc.selector)}, "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [operator], "ports": _tcp(8000, 5432)}, {"from": [pg], "ports": _tcp(5432)}],
                    "egress": [{"to": [pg], "ports": _tcp(5432)},
                               {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(443, 6443)}]})
        self.register_outputs({"policies": sorted(self.policies)})
