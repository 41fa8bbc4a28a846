"""Non-root, read-only root filesystem, resource limits, pinned images."""

from __future__ import annotations

from typing import Any

from agent_infra.policies.engine import UNKNOWN
from policy_helpers import dumps, messages, res

SAFE = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
LIMITS = {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}}


def deployment(name: str = "d", **container: Any) -> Any:
    spec = {"name": "api", "image": "ghcr.io/acme/agent:1.2.3", "securityContext": SAFE, "resources": LIMITS,
            **container}
    return res("kubernetes:apps/v1:Deployment", {"spec": {"template": {"spec": {"containers": [spec]}}}}, name=name)


def task(name: str = "t", **container: Any) -> Any:
    spec = {"name": "api", "image": "1.dkr.ecr.us-east-1.amazonaws.com/agent:abc123", "user": "10001",
            "readonlyRootFilesystem": True, **container}
    return res("aws:ecs/taskDefinition:TaskDefinition", {"cpu": "512", "memory": "1024",
                                                         "containerDefinitions": dumps([spec])}, name=name)


def test_compliant_containers_pass_every_container_policy() -> None:
    for policy in ("container-non-root", "container-read-only-root-fs", "container-resource-limits",
                   "no-latest-image"):
        assert messages(policy, deployment(), task()) == [], policy


def test_container_non_root() -> None:
    pod_level = res("kubernetes:apps/v1:StatefulSet", {"spec": {"template": {"spec": {
        "securityContext": {"runAsUser": 10001}, "containers": [{"name": "redis"}]}}}})
    assert messages("container-non-root", pod_level) == []
    assert messages("container-non-root", deployment("k", securityContext={"privileged": True}),
                    task("e", user=None), task("root", user="0:0")) == [
        "k: container 'api' may run as root (set runAsNonRoot: true)",
        "k: container 'api' is privileged or allows privilege escalation",
        "e: container 'api' runs as the image default user (user is unset)",
        "root: container 'api' runs as root (user is '0:0')"]


def test_container_read_only_root_fs() -> None:
    assert messages("container-read-only-root-fs", deployment("k", securityContext={"runAsNonRoot": True}),
                    task("e", readonlyRootFilesystem=False)) == [
        "k: container 'api' has a writable root filesystem (readOnlyRootFilesystem is not true)",
        "e: container 'api' has a writable root filesystem (readonlyRootFilesystem is not true)"]


def test_container_resource_limits() -> None:
    requests_only = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    assert messages("container-resource-limits", deployment("k", resources=requests_only)) == [
        "k: container 'api' has no limits.cpu"]
    assert messages("container-resource-limits", deployment("k", resources=requests_only),
                    config={"requireCpuLimit": False}) == []
    no_task_size = res("aws:ecs/taskDefinition:TaskDefinition", {"containerDefinitions": dumps([])}, name="e")
    assert messages("container-resource-limits", no_task_size, deployment("u", resources=UNKNOWN)) == [
        "e: task cpu and memory not set"]


def test_no_latest_image() -> None:
    digest = "ghcr.io/acme/agent@sha256:" + "a" * 64
    assert messages("no-latest-image", deployment(image=digest), deployment(image=UNKNOWN), task(image="redis:7.2")) == []
    assert messages("no-latest-image", deployment("k", image="nginx:latest"), task("e", image="python"),
                    res("gcp:cloudrunv2/service:Service",
                        {"template": {"containers": [{"name": "api", "image": "gcr.io/p/agent:latest"}]}}, name="run"),
                    res("aws:lambda/function:Function", {"imageUri": "1.dkr.ecr.r.amazonaws.com/a:latest"},
                        name="fn")) == [
        "k: container 'api' image 'nginx:latest' uses :latest",
        "e: container 'api' image 'python' has no tag (means :latest)",
        "run: container 'api' image 'gcr.io/p/agent:latest' uses :latest",
        "fn: image '1.dkr.ecr.r.amazonaws.com/a:latest' uses :latest"]


def test_image_from_an_unknown_output_is_not_judged() -> None:
    import pulumi.output

    unknown = pulumi.output.Unknown()
    container = res("docker:index/container:Container", {"image": unknown, "user": "10001", "readOnly": True})
    assert messages("no-latest-image", container) == []


def test_remediation_names_the_fix_for_the_resource_type() -> None:
    from policy_helpers import violations

    docker = res("docker:index/container:Container", {"image": "postgres:16", "readOnly": True}, name="pg")
    (found,) = violations("container-non-root", docker)
    assert found.remediation.startswith('Set user (e.g. "999:999" for the official postgres and redis images')
    (found,) = violations("container-non-root", task("e", user=None))
    assert found.remediation.startswith("Set the container definition's user")
