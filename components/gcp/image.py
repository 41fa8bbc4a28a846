"""`ArtifactImage`: an Artifact Registry Docker repository and the agent_app image built into it
(linux/amd64: Cloud Run runs x86-64 only), referenced by digest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from ..agent_image import AgentImage


class ArtifactImageArgs(ComponentArgs):
    """Artifact Registry repository + image. Cost: storage $0.10/GB-month beyond 0.5 GB."""

    project: str
    """Project of the repository."""
    location: str
    """Region of the repository (the services' region keeps pulls free and fast)."""
    image: str | None = None
    """Use this pinned image instead of building (`app.image`); no repository is created."""
    keep_versions: int = 10
    """Cleanup policy: keep the newest N versions, delete older untagged ones."""
    labels: dict[str, str] = {}
    """Labels on the repository."""
    transforms: Mapping[Literal["repository"], Transform] = {}
    """Escape hatch per child role (`repository`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class ArtifactImage(pulumi.ComponentResource):
    """The image Cloud Run runs."""

    image_ref: pulumi.Output[str]
    """`<region>-docker.pkg.dev/<project>/<repo>/agent-app@sha256:...` (or `image` as given)."""

    def __init__(self, name: str, args: ArtifactImageArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(ArtifactImageArgs, args, name)
        super().__init__("agent-infra:gcp:ArtifactImage", name, None, opts)
        child = ChildFactory(self, args.transforms)
        self.repository = None
        self.build = None
        if args.image is not None:
            self.image_ref = pulumi.Output.from_input(args.image)
        else:
            repo_id = physical_name(name, 63).lower()
            self.repository = child(
                "repository", gcp.artifactregistry.Repository, name, repository_id=repo_id, location=args.location,
                format="DOCKER", labels=dict(args.labels),
                cleanup_policies=[{"id": "keep-recent", "action": "KEEP",
                                   "most_recent_versions": {"keep_count": args.keep_versions}},
                                  {"id": "delete-untagged", "action": "DELETE", "condition": {"tag_state": "UNTAGGED"}}])
            repository = self.repository.repository_id.apply(
                lambda rid: f"{args.location}-docker.pkg.dev/{args.project}/{rid}/agent-app")
            self.build = AgentImage(f"{name}-build", {"repository": repository, "platform": "linux/amd64"},
                                    pulumi.ResourceOptions(parent=self))
            self.image_ref = self.build.image_ref
        self.register_outputs({"image_ref": self.image_ref})
