"""The namespaces of the cluster's operators are settings: a KEDA installed elsewhere still reaches Redis."""

from __future__ import annotations

import json

from agent_infra.components import HybridAgent

from agent_infra.offline import synthesize

SECRETS = {"agent-infra:r": "x", "agent-infra:p": "y"}


def policies(kubernetes: dict) -> str:
    config = {"cloud": "kubernetes", "topology": "hybrid", "environment": "dev", "app": {"image": "ghcr.io/a/b:1"},
              "kubernetes": {"redis_password": {"config": "r"}, "postgres_password": {"config": "p"}, **kubernetes}}
    plan = synthesize(lambda: HybridAgent("a", config), config=SECRETS, secret_keys=list(SECRETS))
    return json.dumps([r.inputs for r in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")])


def test_keda_and_prometheus_namespaces_reach_the_network_policies():
    default = policies({})
    assert '"kubernetes.io/metadata.name": "keda"' in default
    assert '"kubernetes.io/metadata.name": "monitoring"' in default
    moved = policies({"keda_namespace": "keda-system", "prometheus_namespace": "observability"})
    assert '"kubernetes.io/metadata.name": "keda-system"' in moved and '"keda"' not in moved
    assert '"kubernetes.io/metadata.name": "observability"' in moved
