"""`agent-infra render`: a stack's Kubernetes objects as plain YAML manifests, one file per object.

For review, GitOps (commit the directory, let Argo CD / Flux apply it) or `kubectl apply -f DIR`.
Objects come from the offline plan, so they are exactly what `pulumi up` would send. Secret values
never leave Pulumi: a rendered Secret lists its keys with empty values and says where to fill them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .offline import SECRET_MASK, Plan, PlannedResource

PREFIX = "kubernetes:"
SECRET_NOTE_ANNOTATION = "agent-infra.dev/secret-values"
SECRET_NOTE = "omitted from rendered manifests; fill from your secret store or let `pulumi up` create this Secret"


def api_version_kind(type_token: str) -> tuple[str, str]:
    """`kubernetes:apps/v1:Deployment` -> (`apps/v1`, `Deployment`); the core group is plain `v1`."""
    _, group_version, kind = type_token.split(":", 2)
    return (group_version.removeprefix("core/"), kind)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def to_manifest(resource: PlannedResource) -> dict[str, Any]:
    """The Kubernetes object a planned resource is: apiVersion, kind, metadata, then the rest."""
    api_version, kind = api_version_kind(resource.type)
    inputs = _clean(dict(resource.inputs))
    api_version = inputs.pop("apiVersion", api_version)
    kind = inputs.pop("kind", kind)
    manifest: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": inputs.pop("metadata", {})}
    if kind == "Secret":
        for field in ("stringData", "data"):
            values = inputs.get(field)
            if values == SECRET_MASK or isinstance(values, dict):
                keys = sorted(values) if isinstance(values, dict) else []
                inputs[field] = {key: "" for key in keys}
        manifest["metadata"].setdefault("annotations", {})[SECRET_NOTE_ANNOTATION] = SECRET_NOTE
    for key in sorted(inputs):
        manifest[key] = inputs[key]
    return manifest


APPLY_ORDER = ("Namespace", "ServiceAccount", "Secret", "ExternalSecret", "ConfigMap", "Service",
               "StatefulSet", "Cluster", "Deployment", "Ingress", "Middleware", "TriggerAuthentication",
               "ScaledObject", "HorizontalPodAutoscaler", "VerticalPodAutoscaler", "PodDisruptionBudget",
               "NetworkPolicy")
"""Kinds in the order `kubectl apply` needs them (namespace and secrets before the pods that use them)."""


def _order(manifest: dict[str, Any]) -> tuple[int, str, str]:
    kind = manifest["kind"]
    rank = APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
    return (rank, kind, str(manifest.get("metadata", {}).get("name", "")))


def _referenced_keys(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Secret name -> keys that pods (secretKeyRef, secret and projected volumes) and KEDA
    (secretTargetRef) read from it."""
    found: dict[str, set[str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            ref = value.get("secretKeyRef")
            if isinstance(ref, dict) and "name" in ref and "key" in ref:
                found.setdefault(str(ref["name"]), set()).add(str(ref["key"]))
            volume = value.get("secret")
            if isinstance(volume, dict) and isinstance(volume.get("items"), list):
                secret_name = volume.get("name", volume.get("secretName"))
                for item in volume["items"]:
                    if isinstance(item, dict) and secret_name and "key" in item:
                        found.setdefault(str(secret_name), set()).add(str(item["key"]))
            if value.keys() >= {"parameter", "name", "key"}:
                found.setdefault(str(value["name"]), set()).add(str(value["key"]))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(objects)
    return found


def manifests(plan: Plan) -> list[dict[str, Any]]:
    """Every Kubernetes object of the plan, in apply order (namespace first), then by kind and name.

    Secret values are masked in the plan; a Secret lists the keys workloads read, with empty values.
    """
    objects = sorted((to_manifest(r) for r in plan.resources if r.custom and r.type.startswith(PREFIX)),
                     key=_order)
    keys = _referenced_keys(objects)
    for manifest in objects:
        if manifest["kind"] == "Secret" and manifest.get("stringData") == {}:
            manifest["stringData"] = {key: "" for key in sorted(keys.get(manifest["metadata"].get("name"), ()))}
    return objects


def _file_name(index: int, manifest: dict[str, Any]) -> str:
    name = str(manifest.get("metadata", {}).get("name", "unnamed"))
    slug = re.sub(r"[^a-z0-9.-]+", "-", f"{manifest['kind'].lower()}-{name.lower()}").strip("-")
    return f"{index:03d}-{slug}.yaml"


def render(plan: Plan, out_dir: str | Path) -> list[Path]:
    """Write one YAML file per Kubernetes object of `plan` into `out_dir`; return the paths.

    Stale `NNN-*.yaml` files from an earlier render are removed so the directory mirrors the plan.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("[0-9][0-9][0-9]-*.yaml"):
        stale.unlink()
    written = []
    invented = plan.invented_values()
    for index, manifest in enumerate(manifests(plan)):
        path = out / _file_name(index, manifest)
        header = "".join(f"# WARNING: image {image} is a placeholder invented by the offline preview; build and push "
                         "the image (or set app.image to a pinned reference) before applying this manifest\n"
                         for image in placeholder_images(manifest, invented))
        path.write_text(header + yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False))
        written.append(path)
    return written


def placeholder_images(manifest: dict[str, Any], invented: list[str]) -> list[str]:
    """Container images of a workload whose reference holds a value the offline engine made up
    (the digest of an image that was never built here)."""
    spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
    images = [c.get("image", "") for key in ("initContainers", "containers") for c in spec.get(key, []) or []]
    return [image for image in images if isinstance(image, str) and any(v in image for v in invented)]
