"""Rendered manifests of the k8s stack validated strictly (an unknown field is an error, as with
`kubectl apply --validate=strict`) against Kubernetes' own OpenAPI schemas, as shipped by the
`kubernetes-validate` package (generated from the Kubernetes release's openapi spec)."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from agent_infra.render import manifests
from tests.wiring.harness import revealed_plan

KUBERNETES_VERSION = "1.31.0"
"""The oldest Kubernetes minor still in upstream support when this was written."""
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "VerticalPodAutoscaler", "ExternalSecret", "Cluster"}
"""Custom resources: not in Kubernetes' own schemas (see docs/kubernetes.md, validation)."""


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return manifests(revealed_plan("k8s"))


def test_every_core_object_validates_strictly(objects) -> None:
    problems = []
    checked = 0
    for obj in objects:
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message} at {list(error.path)}")
    assert not problems, "\n".join(problems)
    assert checked == len([o for o in objects if o["kind"] not in CRD_KINDS]) > 20


def test_strict_validation_refuses_an_unknown_field(objects) -> None:
    deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["healthcheck"] = {"cmd": "x"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
