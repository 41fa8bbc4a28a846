"""`agent-infra diagram`: a stack's architecture as a picture, drawn from its offline plan.

The plan says what exists (every resource, by type) and what uses what (each resource's
dependencies). The picture keeps the parts a reader reasons about — gateway, services, queues,
stores, secrets, budget — with the cloud's own icons from the `diagrams` package (Graphviz), and
draws an edge where one part uses another, directly or through glue (an integration, a listener,
a task definition, an event source mapping) that is left out of the picture.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .offline import Plan, PlannedResource

TIERS = ("edge", "compute", "messaging", "data", "operations")

# type token -> (tier, icon "module:Class")
DRAWN: dict[str, tuple[str, str]] = {
    "aws:apigatewayv2/api:Api": ("edge", "diagrams.aws.network:APIGateway"),
    "aws:lb/loadBalancer:LoadBalancer": ("edge", "diagrams.aws.network:ALB"),
    "aws:wafv2/webAcl:WebAcl": ("edge", "diagrams.aws.security:WAF"),
    "aws:lambda/function:Function": ("compute", "diagrams.aws.compute:Lambda"),
    "aws:ecs/service:Service": ("compute", "diagrams.aws.compute:Fargate"),
    "aws:sqs/queue:Queue": ("messaging", "diagrams.aws.integration:SQS"),
    "aws:dynamodb/table:Table": ("data", "diagrams.aws.database:Dynamodb"),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("data", "diagrams.aws.database:ElastiCache"),
    "aws:rds/cluster:Cluster": ("data", "diagrams.aws.database:Aurora"),
    "aws:opensearch/serverlessCollection:ServerlessCollection": ("data", "diagrams.aws.analytics:ElasticsearchService"),
    "aws:secretsmanager/secret:Secret": ("operations", "diagrams.aws.security:SecretsManager"),
    "aws:sns/topic:Topic": ("operations", "diagrams.aws.integration:SNS"),
    "aws:budgets/budget:Budget": ("operations", "diagrams.aws.cost:Budgets"),
    "aws:ec2/natGateway:NatGateway": ("edge", "diagrams.aws.network:NATGateway"),
    "aws:backup/vault:Vault": ("operations", "diagrams.aws.storage:Backup"),
    "gcp:cloudrunv2/service:Service": ("compute", "diagrams.gcp.compute:Run"),
    "gcp:redis/instance:Instance": ("data", "diagrams.gcp.database:Memorystore"),
    "gcp:sql/databaseInstance:DatabaseInstance": ("data", "diagrams.gcp.database:SQL"),
    "gcp:secretmanager/secret:Secret": ("operations", "diagrams.gcp.security:SecretManager"),
    "gcp:billing/budget:Budget": ("operations", "diagrams.gcp.management:Billing"),
    "kubernetes:networking.k8s.io/v1:Ingress": ("edge", "diagrams.k8s.network:Ingress"),
    "kubernetes:apps/v1:Deployment": ("compute", "diagrams.k8s.compute:Deployment"),
    "kubernetes:keda.sh/v1alpha1:ScaledObject": ("operations", "diagrams.k8s.clusterconfig:HPA"),
    "kubernetes:apps/v1:StatefulSet": ("data", "diagrams.k8s.compute:StatefulSet"),
    "kubernetes:core/v1:Secret": ("operations", "diagrams.k8s.podconfig:Secret"),
    "docker:index/container:Container": ("compute", "diagrams.onprem.container:Docker"),
}
# Data services recognised by name (StatefulSets, containers): the icon says what runs inside.
BY_NAME = (("redis", "data", "diagrams.onprem.inmemory:Redis"), ("postgres", "data", "diagrams.onprem.database:PostgreSQL"),
           ("qdrant", "data", "diagrams.generic.database:SQL"))
# Backend settings values (AGENT_*_BACKEND) that mean "uses the data service of this name".
BACKEND_WORDS = {"redis": ("redis",), "postgres": ("pgvector", "postgres", "sql"), "qdrant": ("qdrant",)}
# Left out of the picture but carrying the "uses" relation between the parts that are drawn.
GLUE = ("aws:apigatewayv2/integration:Integration", "aws:apigatewayv2/route:Route", "aws:apigatewayv2/stage:Stage",
        "aws:lambda/eventSourceMapping:EventSourceMapping", "aws:lb/listener:Listener", "aws:lb/targetGroup:TargetGroup",
        "aws:wafv2/webAclAssociation:WebAclAssociation", "aws:ecs/taskDefinition:TaskDefinition",
        "aws:secretsmanager/secretVersion:SecretVersion", "aws:lambda/permission:Permission",
        "kubernetes:core/v1:Service", "kubernetes:core/v1:ConfigMap", "gcp:secretmanager/secretIamMember:SecretIamMember",
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember", "gcp:sql/database:Database", "gcp:sql/user:User")


# The relations worth an arrow (caller tier, used tier); the rest (a queue's KMS key, a secret's
# rotation) is true but drowns the picture.
FLOWS = {("edge", "edge"), ("edge", "compute"), ("compute", "messaging"), ("compute", "data"),
         ("compute", "operations"), ("messaging", "messaging"), ("operations", "operations")}


@dataclass(frozen=True)
class Part:
    """One drawn node: a resource, its tier and icon."""

    urn: str
    label: str
    tier: str
    icon: str


def parts(plan: Plan) -> list[Part]:
    """The resources worth drawing, in a stable order."""
    found = []
    for resource in plan.custom_resources():
        spec = DRAWN.get(resource.type)
        if spec is None:
            continue
        tier, icon = spec
        if resource.type in ("kubernetes:apps/v1:StatefulSet", "docker:index/container:Container"):
            for word, named_tier, named_icon in BY_NAME:
                if word in resource.name:
                    tier, icon = named_tier, named_icon
        found.append(Part(resource.urn, resource.name, tier, icon))
    return sorted(found, key=lambda p: (TIERS.index(p.tier), p.label))


def uses(plan: Plan, drawn: Iterable[Part]) -> list[tuple[str, str]]:
    """(from, to) URN pairs: drawn parts linked by a dependency, directly or through glue resources,
    pointing from the earlier tier (the caller) to the later one (what it uses)."""
    drawn_by_urn = {p.urn: p for p in drawn}
    by_urn = {r.urn: r for r in plan.resources}
    neighbours: dict[str, set[str]] = {}
    for resource in plan.resources:
        for dep in resource.dependencies:
            neighbours.setdefault(resource.urn, set()).add(dep)
            neighbours.setdefault(dep, set()).add(resource.urn)

    def is_glue(urn: str) -> bool:
        resource: PlannedResource | None = by_urn.get(urn)
        return resource is not None and resource.type in GLUE

    edges: set[tuple[str, str]] = set()
    for start in drawn_by_urn:
        seen, frontier = {start}, [start]
        for _ in range(3):  # at most two glue resources in between
            nxt = []
            for urn in frontier:
                for other in neighbours.get(urn, ()):
                    if other in seen:
                        continue
                    seen.add(other)
                    if other in drawn_by_urn:
                        a, b = sorted((drawn_by_urn[start], drawn_by_urn[other]),
                                      key=lambda p: (TIERS.index(p.tier), p.label))
                        if (a.tier, b.tier) in FLOWS:
                            edges.add((a.urn, b.urn))
                    elif is_glue(other):
                        nxt.append(other)
            frontier = nxt
    # Kubernetes and Docker objects refer to each other by name (a Service host in an env var, a
    # Deployment in a ScaledObject), not by Pulumi outputs: a mention of another part's name links them.
    named = [p for p in drawn_by_urn.values() if by_urn[p.urn].type.startswith(("kubernetes:", "docker:"))]
    config_maps = {str(r.get("metadata.name", r.name)): json.dumps(r.inputs) for r in plan.resources
                   if r.type == "kubernetes:core/v1:ConfigMap"}
    for node in named:
        text = json.dumps(by_urn[node.urn].inputs)
        text += " ".join(body for name, body in config_maps.items() if f'"{name}"' in text)  # envFrom
        for peer in named:
            # The data services' URLs are secrets (masked in the plan); the backend settings say which.
            kinds = [words for kind, words in BACKEND_WORDS.items() if kind in peer.label]
            mentioned = re.search(rf"[\"/@]{re.escape(peer.label)}[\":./]", text) or (
                node.tier == "compute" and any(f'"{word}"' in text for words in kinds for word in words))
            if peer.urn != node.urn and mentioned:
                a, b = sorted((node, peer), key=lambda q: (TIERS.index(q.tier), q.label))
                if (a.tier, b.tier) in FLOWS:
                    edges.add((a.urn, b.urn))
    return sorted(edges)


def _icon_class(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _where(plan: Plan) -> str:
    clouds = {r.type.split(":")[0] for r in plan.custom_resources()} - {"docker-build", "pulumi"}
    regions = {str(r.inputs["region"]) for r in plan.resources
               if r.type.startswith("pulumi:providers:") and isinstance(r.inputs.get("region"), str)}
    if not regions:  # the default provider's region shows in what it computed (ARNs, URLs)
        text = " ".join(str(r.outputs.get("arn", "")) for r in plan.custom_resources())
        regions = set(re.findall(r"arn:aws:[a-z0-9-]+:([a-z]{2}-[a-z]+-\d):", text))
    return " · ".join(sorted(clouds)) + (f" ({', '.join(sorted(regions))})" if regions else "")


def draw(plan: Plan, out: Path) -> Path:
    """Write the picture to `out` (.png or .svg; an .svg embeds its icons so it stands alone)."""
    from diagrams import Cluster, Diagram, Edge
    from diagrams.onprem.client import Users

    fmt = out.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"--out: {out.name}: the picture is .png or .svg")
    drawn = parts(plan)
    edges = uses(plan, drawn)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agent-diagram-") as tmp:
        stem = Path(tmp) / "diagram"
        graph = {"fontsize": "20", "pad": "0.4", "nodesep": "0.5", "ranksep": "0.9"}
        with Diagram(f"{plan.project}/{plan.stack} — {_where(plan)}", filename=str(stem), outformat=fmt, show=False,
                     direction="LR", graph_attr=graph):
            nodes = {}
            users = Users("clients")
            for tier in TIERS:
                members = [p for p in drawn if p.tier == tier]
                if not members:
                    continue
                with Cluster(tier):
                    for part in members:
                        nodes[part.urn] = _icon_class(part.icon)(part.label)
            entry = [p for p in drawn if p.tier == "edge" and "nat" not in p.label] or \
                    [p for p in drawn if p.tier == "compute" and "worker" not in p.label]
            for part in entry:
                users >> Edge(color="darkgreen") >> nodes[part.urn]
            for a, b in edges:
                nodes[a] >> nodes[b]
        produced = stem.with_suffix(f".{fmt}")
        data = produced.read_bytes()
    if fmt == "svg":
        data = _inline_images(data.decode()).encode()
    out.write_bytes(data)
    return out


def _inline_images(svg: str) -> str:
    """Graphviz links icons by absolute path into site-packages; embed them as data URIs instead."""
    def embed(match: re.Match[str]) -> str:
        path = Path(match.group(2))
        if not path.is_file():
            return match.group(0)
        return f'{match.group(1)}="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'(xlink:href|href)="(/[^"]+\.png)"', embed, svg)
