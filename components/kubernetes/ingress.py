"""`Ingress`: the public entry to the API, with TLS, WebSocket-friendly timeouts and rate limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ._common import metadata, str_transforms

TRAEFIK_API = "traefik.io/v1alpha1"


class IngressArgs(ComponentArgs):
    """An Ingress for the cluster's controller. Cost: none beyond the controller's load balancer."""

    namespace: str | pulumi.Output[str]
    """Namespace of the Service."""
    service_name: str
    """Backend Service."""
    service_port: int = 80
    """Backend Service port."""
    ingress_class: str = "nginx"
    """IngressClass. `nginx` (ingress-nginx) and `traefik` get rate-limit and timeout settings."""
    host: str | None = None
    """Public host name. None: match any host, plain HTTP (for a first try; set a host for TLS)."""
    tls_secret: str | None = None
    """TLS certificate Secret for `host`. Default when host is set: `<name>-tls`."""
    cluster_issuer: str | None = None
    """cert-manager ClusterIssuer that fills the TLS secret (annotation `cert-manager.io/cluster-issuer`)."""
    idle_timeout_seconds: int = Field(300, ge=1, le=4_000)
    """Proxy read/send timeout: how long an idle WebSocket or streaming response stays open."""
    requests_per_second: int = Field(50, ge=1)
    """Steady request rate per client IP (nginx) or per source (traefik)."""
    burst: int = Field(100, ge=1)
    """Requests allowed above the rate in a burst."""
    max_body_mb: int = Field(1, ge=1, le=1_024)
    """Largest request body accepted (413 above it)."""
    labels: dict[str, str] = {}
    """Labels on the Ingress."""
    transforms: Mapping[Literal["ingress", "rate_limit"], Transform] = {}
    """Escape hatch per child role (`ingress`, `rate_limit`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Ingress(pulumi.ComponentResource):
    """Ingress named like the component; with `traefik`, also a rate-limit Middleware."""

    endpoint: pulumi.Output[str]
    """`https://<host>` when a host is set, else the controller's address once it has one."""

    def __init__(self, name: str, args: IngressArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(IngressArgs, args, "ingress")
        super().__init__("agent-infra:kubernetes:Ingress", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        tls_secret = args.tls_secret or (f"{name}-tls" if args.host else None)
        annotations: dict[str, Any] = {}
        if args.cluster_issuer and args.host:
            annotations["cert-manager.io/cluster-issuer"] = args.cluster_issuer
        if args.ingress_class == "nginx":
            prefix = "nginx.ingress.kubernetes.io/"
            annotations |= {
                prefix + "proxy-read-timeout": str(args.idle_timeout_seconds),
                prefix + "proxy-send-timeout": str(args.idle_timeout_seconds),
                prefix + "proxy-connect-timeout": "10",
                prefix + "proxy-body-size": f"{args.max_body_mb}m",
                prefix + "proxy-buffering": "off",
                prefix + "limit-rps": str(args.requests_per_second),
                prefix + "limit-burst-multiplier": str(max(1, args.burst // args.requests_per_second)),
                prefix + "ssl-redirect": "true" if tls_secret else "false",
            }
        self.rate_limit = None
        if args.ingress_class == "traefik":
            middleware = f"{name}-ratelimit"
            self.rate_limit = child(
                "rate_limit", k8s.apiextensions.CustomResource, middleware, api_version=TRAEFIK_API,
                kind="Middleware", metadata=metadata(middleware, args.namespace, args.labels),
                spec={"rateLimit": {"average": args.requests_per_second, "burst": args.burst, "period": "1s"}})
            annotations |= {
                "traefik.ingress.kubernetes.io/router.entrypoints": "websecure" if tls_secret else "web",
                "traefik.ingress.kubernetes.io/router.middlewares":
                    pulumi.Output.concat(args.namespace, f"-{middleware}@kubernetescrd"),
            }
            if tls_secret:
                annotations["traefik.ingress.kubernetes.io/router.tls"] = "true"
        rule: dict[str, Any] = {"http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": args.service_name, "port": {"number": args.service_port}}}}]}}
        if args.host:
            rule["host"] = args.host
        spec: dict[str, Any] = {"ingressClassName": args.ingress_class, "rules": [rule]}
        if tls_secret and args.host:
            spec["tls"] = [{"hosts": [args.host], "secretName": tls_secret}]
        self.ingress = child("ingress", k8s.networking.v1.Ingress, name,
                             metadata=metadata(name, args.namespace, args.labels, annotations), spec=spec)
        if args.host:
            self.endpoint = pulumi.Output.from_input(f"https://{args.host}" if tls_secret else f"http://{args.host}")
        else:
            self.endpoint = self.ingress.status.apply(_status_address)
        self.register_outputs({"endpoint": self.endpoint})


def _status_address(status: Any) -> str:
    """The controller's address from the Ingress status (`http://<ip or hostname>`)."""
    try:
        entry = status.load_balancer.ingress[0]
        return f"http://{entry.hostname or entry.ip}"
    except (AttributeError, IndexError, TypeError):
        return "http://<ingress-controller-address>"
