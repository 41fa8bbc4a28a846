"""Containers run as non-root on a read-only root filesystem, with limits, from pinned images."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..engine import Context, Resource, Rule, is_unknown
from ._common import (
    CLOUD_RUN_JOB,
    CLOUD_RUN_SERVICE,
    CONTAINER_TYPES,
    DOCKER_CONTAINER,
    ECS_TASK,
    K8S_WORKLOADS,
    LAMBDA,
    Container,
    as_dict,
    containers,
    for_types,
    resource_rule,
)

RULES: list[Rule] = []


def _k8s_security(container: Container, key: str) -> Any:
    own = container.get(f"securityContext.{key}")
    return own if own is not None else container.pod_security.get(key)


def _root_user(user: Any) -> bool:
    return str(user).split(":")[0] in ("", "0", "root")


@resource_rule(
    RULES, name="container-non-root", area="containers", level="mandatory", severity="high",
    types=K8S_WORKLOADS | {ECS_TASK, DOCKER_CONTAINER},
    description="Checks whether containers run as a non-root user and are not privileged.",
    remediation="Kubernetes: securityContext {runAsNonRoot: true, runAsUser: 10001, allowPrivilegeEscalation: "
                "false}; ECS: user: \"10001\"; Docker: user: \"10001\". The agent image's user is 10001.",
    fixes={**for_types(K8S_WORKLOADS, "Set securityContext {runAsNonRoot: true, runAsUser: 10001, "
                       "allowPrivilegeEscalation: false} on the pod or container, and no privileged: true."),
           ECS_TASK: "Set the container definition's user (\"10001\" for the agent image; the image's non-root "
                     "uid for others) and drop privileged.",
           DOCKER_CONTAINER: "Set user (e.g. \"999:999\" for the official postgres and redis images, \"10001\" "
                             "for the agent image) and chown its volume to that uid."},
)
def container_non_root(resource: Resource, ctx: Context) -> Iterator[str]:
    for c in containers(resource):
        if c.platform == "kubernetes":
            non_root, user = _k8s_security(c, "runAsNonRoot"), _k8s_security(c, "runAsUser")
            if is_unknown(non_root) or is_unknown(user):
                continue
            if non_root is not True and (user is None or _root_user(user)):
                yield f"{c.label} may run as root (set runAsNonRoot: true)"
            if _k8s_security(c, "privileged") is True or _k8s_security(c, "allowPrivilegeEscalation") is True:
                yield f"{c.label} is privileged or allows privilege escalation"
        else:
            user = c.get("user")
            if is_unknown(user):
                continue
            if user is None or _root_user(user):
                yield f"{c.label} runs as {'root' if user is not None else 'the image default user'} (user is " \
                      f"{'unset' if user is None else repr(user)})"
            if c.get("privileged") is True:
                yield f"{c.label} is privileged"


@resource_rule(
    RULES, name="container-read-only-root-fs", area="containers", level="mandatory", severity="medium",
    types=K8S_WORKLOADS | {ECS_TASK, DOCKER_CONTAINER},
    description="Checks whether containers mount their root filesystem read-only.",
    remediation="Kubernetes: securityContext.readOnlyRootFilesystem: true plus an emptyDir at /tmp; ECS: "
                "readonlyRootFilesystem: true plus a task volume for /tmp; Docker: readOnly: true with a tmpfs.",
    fixes={**for_types(K8S_WORKLOADS, "Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir "
                       "where the process writes (/tmp)."),
           ECS_TASK: "Set readonlyRootFilesystem: true and add a task volume for /tmp.",
           DOCKER_CONTAINER: "Set readOnly: true and add tmpfs mounts for the paths the process writes "
                             "(e.g. /tmp, /var/run/postgresql) besides its data volume."},
)
def container_read_only_root_fs(resource: Resource, ctx: Context) -> Iterator[str]:
    for c in containers(resource):
        key = {"kubernetes": "securityContext.readOnlyRootFilesystem", "ecs": "readonlyRootFilesystem",
               "docker": "readOnly"}[c.platform]
        value = c.get(key)
        if value is not True and not is_unknown(value):
            yield f"{c.label} has a writable root filesystem ({key.rsplit('.', 1)[-1]} is not true)"


@resource_rule(
    RULES, name="container-resource-limits", area="containers", level="mandatory", severity="medium",
    types=K8S_WORKLOADS | {ECS_TASK, CLOUD_RUN_SERVICE, CLOUD_RUN_JOB},
    description="Checks whether containers declare CPU and memory limits.",
    remediation="Kubernetes: resources.requests and resources.limits for cpu and memory; ECS: task-level cpu "
                "and memory; Cloud Run: resources.limits {cpu, memory}.",
    fixes={**for_types(K8S_WORKLOADS, "Set resources.requests and resources.limits (cpu, memory) on every "
                       "container."),
           ECS_TASK: "Set the task definition's cpu and memory (agent-infra: app.cpu, app.memory_mb).",
           **for_types((CLOUD_RUN_SERVICE, CLOUD_RUN_JOB), "Set resources.limits {cpu, memory} on every container.")},
    config={"requireCpuLimit": {"type": "boolean", "default": True,
                                "description": "Kubernetes: require limits.cpu (false: requests.cpu is enough)."}},
)
def container_resource_limits(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type == ECS_TASK:
        missing = [k for k in ("cpu", "memory") if resource.get(k) is None]
        if missing:
            yield f"task {' and '.join(missing)} not set"
        return
    for c in containers(resource):
        resources = c.get("resources")
        if is_unknown(resources):
            continue
        limits, requests = as_dict(as_dict(resources).get("limits")), as_dict(as_dict(resources).get("requests"))
        missing = [] if limits.get("memory") else ["limits.memory"]
        if c.platform == "kubernetes" and not limits.get("cpu"):
            if ctx["requireCpuLimit"]:
                missing.append("limits.cpu")
            elif not requests.get("cpu"):
                missing.append("requests.cpu")
        if c.platform == "cloudrun" and not limits.get("cpu"):
            missing.append("limits.cpu")
        if missing:
            yield f"{c.label} has no {', '.join(missing)}"


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def unpinned(image: Any) -> str | None:
    """Why an image reference is not reproducible, or None."""
    if not isinstance(image, str) or is_unknown(image) or not image:
        return None
    if _DIGEST.search(image):
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest)"
    if last.endswith(":latest"):
        return f"image {image!r} uses :latest"
    return None


@resource_rule(
    RULES, name="no-latest-image", area="containers", level="mandatory", severity="medium",
    types=CONTAINER_TYPES | {LAMBDA},
    description="Checks whether container images are pinned to a tag other than latest or to a digest.",
    remediation="Reference images by an immutable tag or digest (agent-infra tags the app image by content "
                "hash); never :latest or an untagged name.",
)
def no_latest_image(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type == LAMBDA:
        problem = unpinned(resource.get("imageUri"))
        if problem:
            yield problem
        return
    for c in containers(resource):
        problem = unpinned(c.get("image"))
        if problem:
            yield f"{c.label} {problem}" if c.platform != "docker" else problem
