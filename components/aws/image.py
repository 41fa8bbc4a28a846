"""ECR repository (scan on push, immutable tags, lifecycle) and the agent_app image pushed to it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from ..agent_image import DEFAULT_DOCKERFILE, AgentImage
from .iam import Grant

CACHE_TAG = "buildcache"
"""The one mutable tag: the registry build cache `AgentImage` refreshes on every build."""


class EcrImageArgs(ComponentArgs):
    """ECR repository plus the agent_app image built from `agent_app/Dockerfile`, tagged by content.

    Cost: ECR storage $0.10/GB-month (the lifecycle rule keeps it to `keep_images` images);
    basic scan on push is free. Preview never needs a Docker engine (build_on_preview is off).
    """

    image: str | None = None
    """A pinned image to run instead of building one (`registry/name:tag` or `@sha256:`). When set,
    no repository is created."""
    context: str | None = None
    """Build context. None: the installed agent_app's sources; a relative path is relative to the
    project root (the folder of `Pulumi.yaml`), never to the working directory."""
    dockerfile: str = DEFAULT_DOCKERFILE
    """Dockerfile path relative to `context`."""
    architecture: Literal["arm64", "x86_64"] = "arm64"
    """CPU architecture the image is built for; must match the task definition's."""
    keep_images: int = Field(20, ge=1, le=1_000)
    """Lifecycle rule: keep the newest N tagged images (rollbacks), expire the rest."""
    untagged_expiry_days: int = Field(7, ge=1, le=365)
    """Lifecycle rule: expire untagged images (old cache manifests) after N days."""
    force_delete: bool = False
    """Allow deleting the repository while it holds images (dev stacks)."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["lifecycle", "repository"], Transform] = {}
    """Escape hatch per child role (`lifecycle`, `repository`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class EcrImage(pulumi.ComponentResource):
    """`image_ref` is the digest-pinned reference the task definitions run."""

    image_ref: pulumi.Output[str]
    """`<repo>@sha256:...` for a built image, or the given `image`."""
    repository_arn: pulumi.Output[str] | None
    """The ECR repository (None when `image` is given)."""

    def __init__(self, name: str, args: EcrImageArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(EcrImageArgs, args, name)
        super().__init__("agent-infra:aws:EcrImage", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        self.repository = None
        self.repository_arn = None
        if args.image is not None:
            self.image_ref = pulumi.Output.from_input(args.image)
            self.register_outputs({"image_ref": self.image_ref})
            return
        self.repository = child(
            "repository", aws.ecr.Repository, name, name=physical_name(name, 256, "/").lower(),
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[{"filter": CACHE_TAG, "filter_type": "WILDCARD"}],
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            force_delete=args.force_delete)
        child("lifecycle", aws.ecr.LifecyclePolicy, f"{name}-lifecycle", repository=self.repository.name,
              policy=json.dumps({"rules": [
                  {"rulePriority": 1, "description": f"untagged after {args.untagged_expiry_days} days",
                   "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                                 "countNumber": args.untagged_expiry_days}, "action": {"type": "expire"}},
                  {"rulePriority": 2, "description": f"keep the newest {args.keep_images} images",
                   "selection": {"tagStatus": "tagged", "tagPatternList": ["c-*"], "countType": "imageCountMoreThan",
                                 "countNumber": args.keep_images}, "action": {"type": "expire"}}]}))
        token = aws.ecr.get_authorization_token_output(registry_id=self.repository.registry_id)
        self.build = AgentImage(name, {
            "repository": self.repository.repository_url, "context": args.context, "dockerfile": args.dockerfile,
            "platform": "linux/arm64" if args.architecture == "arm64" else "linux/amd64",
            "registry_username": token.user_name, "registry_password": pulumi.Output.secret(token.password),
        }, pulumi.ResourceOptions(parent=self))
        self.image_ref = self.build.image_ref
        self.repository_arn = self.repository.arn
        self.register_outputs({"image_ref": self.image_ref, "repository_arn": self.repository_arn})

    def grant_pull(self) -> list[Grant]:
        """What an ECS execution role needs to pull from this repository (none for a given image)."""
        if self.repository is None:
            return []
        return [Grant(("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
                      (self.repository.arn,), "PullAgentImage")]
