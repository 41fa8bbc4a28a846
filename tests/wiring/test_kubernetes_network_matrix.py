"""The k8s stack's connectivity matrix, evaluated from its rendered NetworkPolicies: every flow
the topology needs is allowed (including each KEDA trigger's and the Ingress backend's target,
found through their Services), and every other flow to, from or within the namespace is denied."""

from __future__ import annotations

from typing import Any

import pytest

from agent_infra.render import manifests
from tests.wiring.harness import revealed_plan
from tests.wiring.network_policy_eval import Address, Cluster, Pod

NAMESPACE = "agent"
OUTSIDE = {
    "ingress-controller": Pod("ingress-controller", "ingress-nginx", (("app.kubernetes.io/name", "ingress-nginx"),)),
    "keda-operator": Pod("keda-operator", "keda", (("app", "keda-operator"),
                                                   ("app.kubernetes.io/name", "keda-operator"))),
    "prometheus": Pod("prometheus", "monitoring", (("app.kubernetes.io/name", "prometheus"),)),
    "kube-dns": Pod("kube-dns", "kube-system", (("k8s-app", "kube-dns"),), (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"))),
    "stranger": Pod("stranger", "default", (("app", "stranger"),)),
}
ADDRESSES = {"model-endpoint": Address("model-endpoint", "203.0.113.10"),  # a public LLM API
             "metadata": Address("metadata", "169.254.169.254"),
             "vpc-host": Address("vpc-host", "10.20.30.40")}
PORTS = [(53, "UDP"), (53, "TCP"), (80, "TCP"), (443, "TCP"), (5432, "TCP"), (6333, "TCP"), (6379, "TCP"),
         (8000, "TCP"), (8001, "TCP")]
NEEDED = {
    ("ingress-controller", "api", 8000, "TCP"),
    ("prometheus", "api", 8000, "TCP"),  # /metrics
    ("keda-operator", "redis", 6379, "TCP"),  # the redis-streams trigger reads lag and pending counts
    *{(app, store, port, "TCP") for app in ("api", "worker") for store, port in (("redis", 6379), ("postgres", 5432))},
    *{(app, "model-endpoint", 443, "TCP") for app in ("api", "worker")},
    *{(pod, "kube-dns", 53, proto) for pod in ("api", "worker", "redis", "postgres") for proto in ("UDP", "TCP")},
}


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return manifests(revealed_plan("k8s"))


def our_pods(objects: list[dict[str, Any]]) -> dict[str, Pod]:
    pods = {}
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        template = obj["spec"]["template"]
        labels = tuple(sorted(template["metadata"]["labels"].items()))
        ports = tuple((p.get("name", ""), p["containerPort"], p.get("protocol", "TCP"))
                      for c in template["spec"]["containers"] for p in c.get("ports", []))
        role = template["metadata"]["labels"]["app.kubernetes.io/component"]
        pods[role] = Pod(role, obj["metadata"]["namespace"], labels, ports)
    return pods


def service_targets(objects: list[dict[str, Any]], pods: dict[str, Pod], service: str, port: int) -> list[tuple[Pod, int]]:
    """Pods behind a Service port, with the container port the traffic arrives on."""
    from tests.wiring.network_policy_eval import selects

    svc = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == service)
    entry = next(p for p in svc["spec"]["ports"] if p["port"] == port)
    out = []
    for pod in pods.values():
        if pod.namespace == svc["metadata"]["namespace"] and selects({"matchLabels": svc["spec"]["selector"]},
                                                                      pod.label_map()):
            target = entry.get("targetPort", port)
            number = next((n for name, n, _ in pod.ports if name == target), target)
            out.append((pod, int(number)))
    assert out, f"Service {service}:{port} selects no pod"
    return out


def test_matrix_allows_exactly_the_needed_flows(objects) -> None:
    pods = our_pods(objects)
    assert set(pods) == {"api", "worker", "redis", "postgres"}
    cluster = Cluster([o for o in objects if o["kind"] == "NetworkPolicy"])
    endpoints: dict[str, Any] = {**pods, **OUTSIDE, **ADDRESSES}
    allowed = set()
    for source_name, source in {**pods, **OUTSIDE}.items():
        for dest_name, dest in endpoints.items():
            if source_name == dest_name:
                continue
            involves_us = source_name in pods or dest_name in pods
            if not involves_us:
                continue
            for port, protocol in PORTS:
                if cluster.allows(source, dest, port, protocol):
                    allowed.add((source_name, dest_name, port, protocol))
    assert sorted(NEEDED - allowed) == [], "needed flows denied"
    assert sorted(allowed - NEEDED) == [], "flows allowed that nothing needs"


def test_every_keda_trigger_and_the_ingress_backend_reach_their_targets(objects) -> None:
    pods = our_pods(objects)
    cluster = Cluster([o for o in objects if o["kind"] == "NetworkPolicy"])
    triggers = [t for o in objects if o["kind"] == "ScaledObject" for t in o["spec"]["triggers"]
                if t["type"].startswith("redis")]
    assert triggers
    for trigger in triggers:
        host, port = trigger["metadata"]["address"].rsplit(":", 1)
        service, namespace = host.split(".")[:2]
        assert namespace == NAMESPACE
        for pod, target_port in service_targets(objects, pods, service, int(port)):
            assert cluster.allows(OUTSIDE["keda-operator"], pod, target_port), (trigger["name"], pod.name)
    ingress = next(o for o in objects if o["kind"] == "Ingress")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            for pod, target_port in service_targets(objects, pods, backend["name"], backend["port"]["number"]):
                assert cluster.allows(OUTSIDE["ingress-controller"], pod, target_port)


def test_the_evaluator_sees_a_missing_rule() -> None:
    # Without the KEDA rule (the defect): the operator cannot read the stream it scales workers from zero on.
    objects = manifests(revealed_plan("k8s"))
    for obj in objects:
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"].endswith("redis-ingress"):
            obj["spec"]["ingress"] = obj["spec"]["ingress"][:1]
    pods = our_pods(objects)
    assert not Cluster([o for o in objects if o["kind"] == "NetworkPolicy"]).allows(
        OUTSIDE["keda-operator"], pods["redis"], 6379)
