"""`CloudRunService`: one Cloud Run (v2) service running the agent_app image: resources, scaling,
probes, a request timeout, direct VPC egress, plain env plus Secret Manager references, its own
service account, and a public invoker binding only when asked for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args

CPU_SIZES = (1, 2, 4, 6, 8)
"""vCPU sizes Cloud Run offers at 1 or more; fractional CPU needs request-only billing and
concurrency 1, which an agent API and a queue worker cannot use."""
INGRESS = {"all": "INGRESS_TRAFFIC_ALL", "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
           "internal-and-load-balancer": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}


def cloud_run_cpu(cpu: float) -> int:
    """The smallest Cloud Run CPU size that is at least `cpu` (0.5 -> 1, 3 -> 4)."""
    return next((size for size in CPU_SIZES if size >= cpu), CPU_SIZES[-1])


class CloudRunServiceArgs(ComponentArgs):
    """A Cloud Run service. Cost: per vCPU-second and GiB-second while instances run (always,
    when `cpu_always_allocated`), e.g. 1 vCPU + 1 GiB always on about $50/month; requests
    $0.40/million."""

    location: str
    """Region of the service."""
    image: str | pulumi.Output[str]
    """Image reference, pinned by digest or an immutable tag."""
    service_account_email: str | pulumi.Output[str]
    """Identity the service runs as; give each service its own with only the grants it needs."""
    command: list[str] = []
    """Entrypoint override (`["agent-app", "serve"]`). Empty: the image's."""
    port: int = Field(8000, ge=1, le=65_535)
    """Container port Cloud Run routes requests to and the probes call."""
    ingress: Literal["all", "internal", "internal-and-load-balancer"] = "internal"
    """Who can reach the URL at the network level. `all` is the internet (still subject to IAM)."""
    public: bool = False
    """Grant `roles/run.invoker` to `allUsers`: unauthenticated requests (the app then checks its
    own API keys). Only for the public API."""
    min_instances: int = Field(0, ge=0, le=1_000)
    """Instances kept warm; 0 scales to zero (cold starts of a few seconds)."""
    max_instances: int = Field(4, ge=1, le=1_000)
    """Ceiling: the cost cap and the protection of downstreams."""
    cpu: float = Field(1, gt=0, le=8)
    """vCPUs per instance, rounded up to a Cloud Run size (1, 2, 4, 6, 8)."""
    memory_mb: int = Field(1024, ge=512, le=32_768)
    """Memory per instance, MiB."""
    cpu_always_allocated: bool = False
    """Keep CPU allocated between requests (instance-based billing). Required for queue workers,
    which do their work outside any request."""
    concurrency: int = Field(80, ge=1, le=1_000)
    """Requests one instance handles at once."""
    timeout_seconds: int = Field(30, ge=1, le=3_600)
    """Request timeout; a request running longer is cut with 504."""
    health_path: str = "/healthz"
    """HTTP path of the startup and liveness probes (on `port`)."""
    environment: Mapping[str, str | pulumi.Output[str]] = {}
    """Plain settings. Never secrets: those go in `secrets`."""
    secrets: Mapping[str, str | pulumi.Output[str]] = {}
    """Environment variable name -> Secret Manager secret id; the value is read at instance start
    (`latest` version) and never appears in the service's configuration."""
    network_id: str | pulumi.Output[str] | None = None
    """VPC for direct VPC egress (with `subnet_id`): how the service reaches Memorystore and Cloud SQL."""
    subnet_id: str | pulumi.Output[str] | None = None
    """Subnet for direct VPC egress."""
    deletion_protection: bool = True
    """Refuse `pulumi destroy` of the service (Cloud Run v2's default is on; set it explicitly)."""
    labels: dict[str, str] = {}
    """Labels on the service and its revisions."""
    transforms: Mapping[Literal["invoker", "service"], Transform] = {}
    """Escape hatch per child role (`invoker`, `service`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _checks(self) -> CloudRunServiceArgs:
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances ({self.min_instances}) must not exceed max_instances ({self.max_instances})")
        if self.public and self.ingress != "all":
            raise ValueError("public: true needs ingress: all (an internal service cannot be reached by allUsers)")
        if (self.network_id is None) != (self.subnet_id is None):
            raise ValueError("set both network_id and subnet_id for direct VPC egress, or neither")
        clash = set(self.environment) & set(self.secrets)
        if clash:
            raise ValueError(f"{sorted(clash)} set both as plain environment and as secrets; keep one")
        return self


class CloudRunService(pulumi.ComponentResource):
    """A Cloud Run v2 service with probes, limits, scaling and secrets by reference."""

    uri: pulumi.Output[str]
    """The service's HTTPS URL."""
    service_name: pulumi.Output[str]
    """Service name for alert filters (`resource.labels.service_name`)."""

    def __init__(self, name: str, args: CloudRunServiceArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(CloudRunServiceArgs, args, name)
        super().__init__("agent-infra:gcp:CloudRunService", name, None, opts)
        child = ChildFactory(self, args.transforms)
        envs: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(args.environment.items())]
        envs += [{"name": k, "value_source": {"secret_key_ref": {"secret": v, "version": "latest"}}}
                 for k, v in sorted(args.secrets.items())]
        probe = {"path": args.health_path, "port": args.port}
        container: dict[str, Any] = {
            "image": args.image,
            "ports": {"container_port": args.port, "name": "http1"},
            "resources": {"limits": {"cpu": str(cloud_run_cpu(args.cpu)), "memory": f"{args.memory_mb}Mi"},
                          "cpu_idle": not args.cpu_always_allocated, "startup_cpu_boost": True},
            "envs": envs,
            "startup_probe": {"http_get": probe, "initial_delay_seconds": 0, "period_seconds": 5,
                              "timeout_seconds": 3, "failure_threshold": 24},
            "liveness_probe": {"http_get": probe, "period_seconds": 15, "timeout_seconds": 4,
                               "failure_threshold": 3},
        }
        if args.command:
            container["commands"] = list(args.command)
        template: dict[str, Any] = {
            "service_account": args.service_account_email,
            "containers": [container],
            "scaling": {"min_instance_count": args.min_instances, "max_instance_count": args.max_instances},
            "max_instance_request_concurrency": args.concurrency,
            "timeout": f"{args.timeout_seconds}s",
            "execution_environment": "EXECUTION_ENVIRONMENT_GEN2",
            "labels": dict(args.labels),
        }
        if args.network_id is not None:
            template["vpc_access"] = {"network_interfaces": [{"network": args.network_id, "subnetwork": args.subnet_id}],
                                      "egress": "PRIVATE_RANGES_ONLY"}
        self.service = child("service", gcp.cloudrunv2.Service, name, location=args.location,
                             ingress=INGRESS[args.ingress], deletion_protection=args.deletion_protection,
                             invoker_iam_disabled=False, labels=dict(args.labels), template=template)
        self.invoker = None
        if args.public:
            self.invoker = child("invoker", gcp.cloudrunv2.ServiceIamMember, f"{name}-public-invoker",
                                 name=self.service.name, location=args.location, role="roles/run.invoker",
                                 member="allUsers")
        self.uri = self.service.uri
        self.service_name = self.service.name
        self.register_outputs({"uri": self.uri, "service_name": self.service_name})
