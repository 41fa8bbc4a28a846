"""`AgentImage`: the agent_app container image, built from `agent_app/Dockerfile` and tagged by content.

The tag is a hash of exactly what the Dockerfile copies into the image (its COPY/ADD sources,
minus `.dockerignore` matches), the Dockerfile itself, the build args and the platform. Editing a
test, a doc or a stack file leaves the tag unchanged, so `pulumi up` does not roll the workloads;
editing `agent_app/` changes it and the new digest rolls them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_docker_build as docker_build
from pydantic import Field

from ._base import ChildFactory, ComponentArgs, Transform, resolve_args
from .errors import ConfigError
from .paths import agent_image_context, project_root

DEFAULT_DOCKERFILE = "agent_app/Dockerfile"
"""Where the agent_app image is described, relative to the default build context (the folder that
holds the installed `agent_app` package: a checkout's root, or `site-packages/agent_infra`)."""
ALWAYS_IGNORED = ("**/__pycache__", "**/*.pyc", ".git", ".venv", "**/.mypy_cache", "**/.ruff_cache",
                  "**/.pytest_cache", "**/node_modules")
"""Never part of an image's identity, whatever `.dockerignore` says."""


class AgentImageArgs(ComponentArgs):
    """Build (and by default push) the agent_app image. Cost: registry storage, about $0.10/GB-month."""

    repository: str | pulumi.Output[str]
    """Image repository without tag: `ghcr.io/acme/agent-app`, an ECR repository URL, or `agent-app`
    for a local image. The registry host is its first path segment when that has a dot, colon or is
    `localhost`."""
    context: str | None = None
    """Build context directory. None: the installed agent_app's sources (works from any project).
    A relative path is relative to the project root (the folder of `Pulumi.yaml`), never to the
    working directory, which the Pulumi CLI sets to the program's `main` folder."""
    dockerfile: str = DEFAULT_DOCKERFILE
    """Dockerfile path relative to `context`."""
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/arm64"
    """Target platform. arm64 (Graviton, Ampere, Apple silicon) is the cheaper default."""
    push: bool = True
    """Push to the registry. False builds into the local Docker engine only (local topology)."""
    registry_username: str | pulumi.Output[str] | None = None
    """Registry login user (`AWS` for ECR, `_json_key`/`oauth2accesstoken` for Artifact Registry).
    None: use the Docker credential helpers already configured on the machine."""
    registry_password: str | pulumi.Output[str] | None = None
    """Registry password or token; pass a secret Output (`config.require_secret`). Never a literal."""
    build_args: dict[str, str] = {}
    """`--build-arg` values; part of the content tag. Never put secrets here (they land in the image)."""
    tag: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    """Explicit tag. Default: `c-<12 hex>` from the content hash. `latest` is refused."""
    registry_cache: bool = True
    """Pushed images only: reuse layers from `<repository>:buildcache` and refresh it (mode=max)."""
    transforms: Mapping[Literal["image"], Transform] = {}
    """Escape hatch per child role (`image`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


def build_context(context: str | None) -> Path:
    """The build context a `context` setting names (see `AgentImageArgs.context`)."""
    if context is None:
        return agent_image_context()
    path = Path(context)
    return (path if path.is_absolute() else project_root() / path).resolve()


def _dockerignore(context: Path, dockerfile: Path) -> list[str]:
    # BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile first, else `<context>/.dockerignore`.
    path = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not path.exists():
        path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _ignored(relative: str, patterns: Iterable[str]) -> bool:
    """`.dockerignore` semantics: a path is out when it or a parent directory matches; later `!`
    patterns bring paths back."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = (raw[1:] if negate else raw).strip("/")
        candidates = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(prefix, cand) for prefix in prefixes for cand in candidates):
            ignored = not negate
    return ignored


def copy_sources(dockerfile_text: str) -> list[str]:
    """Context paths a Dockerfile's COPY/ADD instructions read (stages' `--from=` copies excluded)."""
    sources: list[str] = []
    joined = dockerfile_text.replace("\\\n", " ")
    for line in joined.splitlines():
        words = line.strip()
        if not words or words.startswith("#"):
            continue
        instruction, _, rest = words.partition(" ")
        if instruction.upper() not in ("COPY", "ADD"):
            continue
        rest = rest.strip()
        parts = [str(p) for p in json.loads(rest)] if rest.startswith("[") else shlex.split(rest)
        flags = [p for p in parts if p.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue
        args = [p for p in parts if not p.startswith("--")]
        sources.extend(args[:-1])
    return sources


def _files_under(context: Path, source: str, ignore: list[str]) -> list[Path]:
    matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else [context / source]
    files: list[Path] = []
    for match in matches:
        if match.is_file():
            candidates: Iterable[Path] = [match]
        elif match.is_dir():
            candidates = (p for p in match.rglob("*") if p.is_file())
        else:
            continue
        for path in candidates:
            relative = path.relative_to(context).as_posix()
            if not _ignored(relative, [*ALWAYS_IGNORED, *ignore]):
                files.append(path)
    return files


def content_hash(context: str | os.PathLike[str], dockerfile: str = DEFAULT_DOCKERFILE,
                 extra: Mapping[str, Any] | None = None) -> str:
    """SHA-256 over the Dockerfile, the files its COPY/ADD sources name and `extra` (build args,
    platform). Raises `ConfigError` when the Dockerfile is missing."""
    root = Path(context).resolve()
    dockerfile_path = root / dockerfile
    if not dockerfile_path.is_file():
        raise ConfigError(f"app.image: no Dockerfile at {dockerfile_path} (build context {root}); fix "
                          "image.context/image.dockerfile or set app.image to a pinned image (registry/name:tag)")
    text = dockerfile_path.read_text()
    ignore = _dockerignore(root, dockerfile_path)
    digest = hashlib.sha256()
    digest.update(b"dockerfile\0" + text.encode())
    digest.update(b"extra\0" + json.dumps(dict(extra or {}), sort_keys=True).encode())
    files = {path for source in copy_sources(text) for path in _files_under(root, source, ignore)}
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def registry_host(repository: str) -> str | None:
    """`ghcr.io/acme/app` -> `ghcr.io`; `agent-app` (Docker Hub or local) -> None."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


class AgentImage(pulumi.ComponentResource):
    """The agent_app image, tagged by content; `image_ref` is what workloads should run.

    ```python
    image = AgentImage("agent", AgentImageArgs(repository="ghcr.io/acme/agent-app",
                                               registry_username="acme",
                                               registry_password=cfg.require_secret("ghcrToken")))
    k8s.apps.v1.Deployment(..., image=image.image_ref)
    ```
    """

    image_ref: pulumi.Output[str]
    """Pushed: the digest-pinned reference (`repo@sha256:...`); local: `repo:<content tag>`."""
    tag: str
    """The content tag (`c-<12 hex>`) or the explicit `tag`."""
    content_hash: str
    """Full SHA-256 of the build inputs."""

    def __init__(self, name: str, args: AgentImageArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(AgentImageArgs, args, "image")
        if args.tag == "latest":
            raise ConfigError("image.tag: latest is not reproducible; leave tag unset for a content tag")
        context = build_context(args.context)
        self.content_hash = content_hash(context, args.dockerfile,
                                         {"build_args": args.build_args, "platform": args.platform})
        self.tag = args.tag or f"c-{self.content_hash[:12]}"
        super().__init__("agent-infra:docker:AgentImage", name, None, opts)
        child = ChildFactory(self, args.transforms)
        repository = pulumi.Output.from_input(args.repository)
        tag = self.tag
        registries = None
        if args.push and args.registry_password is not None:
            registries = [repository.apply(lambda repo: registry_host(repo) or "docker.io").apply(
                lambda host: docker_build.RegistryArgs(address=host, username=args.registry_username,
                                                       password=args.registry_password))]
        cache_from = cache_to = None
        if args.push and args.registry_cache:
            cache_ref = repository.apply(lambda repo: f"{repo}:buildcache")
            cache_from = [docker_build.CacheFromArgs(
                registry=docker_build.CacheFromRegistryArgs(ref=cache_ref))]
            cache_to = [docker_build.CacheToArgs(registry=docker_build.CacheToRegistryArgs(
                ref=cache_ref, mode=docker_build.CacheMode.MAX, image_manifest=True, oci_media_types=True))]
        self.image = child(
            "image", docker_build.Image, name,
            tags=[repository.apply(lambda repo: f"{repo}:{tag}")],
            context=docker_build.BuildContextArgs(location=str(context)),
            dockerfile=docker_build.DockerfileArgs(location=str(context / args.dockerfile)),
            platforms=[docker_build.Platform(args.platform)],
            build_args=dict(args.build_args) or None,
            push=args.push,
            load=not args.push,
            registries=registries,
            cache_from=cache_from,
            cache_to=cache_to,
            labels={"org.opencontainers.image.revision": self.content_hash,
                    "org.opencontainers.image.title": "agent-app"},
        )
        if args.push:
            self.image_ref = self.image.ref
        else:
            self.image_ref = repository.apply(lambda repo: f"{repo}:{tag}")
        self.register_outputs({"image_ref": self.image_ref, "tag": self.tag})
