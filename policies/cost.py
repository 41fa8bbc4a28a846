"""The monthly cost of a stack, per resource, from a dated and sourced price table and a usage profile.

Two parts per resource: the **fixed floor** (what it costs with no traffic at all: NAT gateways,
load balancers, interface endpoints, minimum tasks and capacity units, cache nodes, keys, secrets)
and the **usage** part (requests, tasks, GB stored) from a `Usage` profile. Used by
`agent-infra cost` and by the `budget-covers-fixed-cost` policy; it reads the same resource view
the policies do, so it runs under the Pulumi CLI's policy pack as well as offline.

The prices are public on-demand list prices in USD for the example stacks' regions (AWS us-east-1,
GCP us-central1), as published on the pages in `SOURCES` on `PRICES_AS_OF`; they were not fetched
live (no network where this runs). Treat the total as an estimate to compare topologies and to
check a budget, not as a quote: taxes, free tiers, savings plans and data transfer are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .engine import Resource, is_unknown

HOURS = 730.0
"""Hours in the average month (AWS and GCP bill monthly figures on 730 h)."""
PRICES_AS_OF = "2025-06-01"
CURRENCY = "USD"

PRICES: dict[str, float] = {
    # AWS, us-east-1
    "aws.nat_gateway_hour": 0.045,
    "aws.nat_gateway_gb": 0.045,
    "aws.public_ipv4_hour": 0.005,
    "aws.interface_endpoint_az_hour": 0.01,
    "aws.alb_hour": 0.0225,
    "aws.alb_lcu_hour": 0.008,
    "aws.waf_acl_month": 5.0,
    "aws.waf_rule_month": 1.0,
    "aws.waf_million_requests": 0.60,
    "aws.fargate_arm_vcpu_hour": 0.03238,
    "aws.fargate_arm_gb_hour": 0.00356,
    "aws.fargate_x86_vcpu_hour": 0.04048,
    "aws.fargate_x86_gb_hour": 0.004445,
    "aws.aurora_serverless_acu_hour": 0.12,
    "aws.aurora_storage_gb_month": 0.10,
    "aws.lambda_arm_gb_second": 0.0000133334,
    "aws.lambda_x86_gb_second": 0.0000166667,
    "aws.lambda_million_requests": 0.20,
    "aws.http_api_million_requests": 1.00,
    "aws.websocket_million_messages": 1.00,
    "aws.sqs_million_requests": 0.40,
    "aws.dynamodb_million_writes": 0.625,
    "aws.dynamodb_million_reads": 0.125,
    "aws.dynamodb_gb_month": 0.25,
    "aws.kms_key_month": 1.0,
    "aws.secret_month": 0.40,
    "aws.alarm_month": 0.10,
    "aws.dashboard_month": 3.0,
    "aws.logs_ingest_gb": 0.50,
    "aws.s3_gb_month": 0.023,
    "aws.ecr_gb_month": 0.10,
    # ElastiCache node-hours (Valkey is priced 20% below Redis OSS for the same node)
    "aws.cache.t4g.micro_hour": 0.016,
    "aws.cache.t4g.small_hour": 0.032,
    "aws.cache.t4g.medium_hour": 0.065,
    "aws.cache.r7g.large_hour": 0.219,
    "aws.valkey_discount": 0.20,
    # GCP, us-central1
    "gcp.run_vcpu_second": 0.000024,
    "gcp.run_gib_second": 0.0000025,
    "gcp.run_idle_vcpu_second": 0.0000025,
    "gcp.run_idle_gib_second": 0.0000025,
    "gcp.run_million_requests": 0.40,
    "gcp.memorystore_basic_gb_hour": 0.049,
    "gcp.memorystore_standard_gb_hour": 0.064,
    "gcp.sql_vcpu_hour": 0.0413,
    "gcp.sql_gb_hour": 0.007,
    "gcp.sql_ssd_gb_month": 0.17,
    "gcp.secret_version_month": 0.06,
    "gcp.artifact_gb_month": 0.10,
}
SOURCES = {
    "aws.nat_gateway": "https://aws.amazon.com/vpc/pricing/",
    "aws.public_ipv4": "https://aws.amazon.com/vpc/pricing/ (public IPv4 addresses)",
    "aws.interface_endpoint": "https://aws.amazon.com/privatelink/pricing/",
    "aws.alb": "https://aws.amazon.com/elasticloadbalancing/pricing/",
    "aws.waf": "https://aws.amazon.com/waf/pricing/",
    "aws.fargate": "https://aws.amazon.com/fargate/pricing/",
    "aws.aurora": "https://aws.amazon.com/rds/aurora/pricing/",
    "aws.lambda": "https://aws.amazon.com/lambda/pricing/",
    "aws.api_gateway": "https://aws.amazon.com/api-gateway/pricing/",
    "aws.sqs": "https://aws.amazon.com/sqs/pricing/",
    "aws.dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "aws.kms": "https://aws.amazon.com/kms/pricing/",
    "aws.secrets_manager": "https://aws.amazon.com/secrets-manager/pricing/",
    "aws.cloudwatch": "https://aws.amazon.com/cloudwatch/pricing/",
    "aws.elasticache": "https://aws.amazon.com/elasticache/pricing/",
    "gcp.cloud_run": "https://cloud.google.com/run/pricing",
    "gcp.memorystore": "https://cloud.google.com/memorystore/docs/redis/pricing",
    "gcp.cloud_sql": "https://cloud.google.com/sql/pricing",
    "gcp.secret_manager": "https://cloud.google.com/secret-manager/pricing",
}


@dataclass(frozen=True)
class Usage:
    """How much the stack is used in a month; the defaults are a small production agent."""

    requests_per_day: int = 10_000
    """HTTP API calls (sync runs, webhooks, status polls)."""
    tasks_per_day: int = 5_000
    """Queued runs the workers take."""
    task_seconds: float = 20.0
    """Average wall time of one run on a worker (serverless: billed function time)."""
    websocket_messages_per_day: int = 20_000
    """Streamed chunks sent to browsers."""
    gb_stored: float = 5.0
    """State, task records, vectors and logs kept."""
    nat_gb_per_month: float = 20.0
    """Traffic through NAT gateways (model API calls, callbacks)."""
    tokens_per_task: int = 0
    """Model tokens per task; with `usd_per_million_tokens` gives the model bill (0: offline model)."""
    usd_per_million_tokens: float = 0.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Usage:
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"usage: unknown key(s) {', '.join(unknown)}; known: {', '.join(cls.__dataclass_fields__)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            kind = float if isinstance(getattr(cls(), key), float) else int
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"usage.{key}: must be a number >= 0, got {value!r}")
            values[key] = kind(value)
        return cls(**values)


@dataclass
class Line:
    """One resource's monthly cost."""

    type: str
    name: str
    fixed: float
    usage: float
    basis: str
    """How it was computed, in words a reviewer can check against the price pages."""

    @property
    def total(self) -> float:
        return self.fixed + self.usage


@dataclass
class Estimate:
    lines: list[Line]
    usage: Usage
    budget_usd: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def fixed(self) -> float:
        return round(sum(line.fixed for line in self.lines), 2)

    @property
    def total(self) -> float:
        return round(sum(line.total for line in self.lines), 2)

    def to_dict(self) -> dict[str, Any]:
        return {"currency": CURRENCY, "prices_as_of": PRICES_AS_OF, "fixed_monthly": self.fixed,
                "total_monthly": self.total, "budget_monthly": self.budget_usd,
                "budget_covers_fixed": None if self.budget_usd is None else self.budget_usd >= self.fixed,
                "budget_covers_total": None if self.budget_usd is None else self.budget_usd >= self.total,
                "usage": asdict(self.usage), "notes": self.notes,
                "resources": [{**asdict(line), "fixed": round(line.fixed, 2), "usage": round(line.usage, 2),
                               "total": round(line.total, 2)} for line in self.lines]}


def _num(value: Any, default: float = 0.0) -> float:
    if is_unknown(value) or value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _price(key: str) -> float:
    return PRICES[key]


def _per_month(daily: float) -> float:
    return daily * HOURS / 24


def _task_size(resources: Sequence[Resource], service: Resource) -> tuple[float, float, bool]:
    """(vCPU, GB, arm64) of an ECS service's task definition."""
    for r in resources:
        if r.type == "aws:ecs/taskDefinition:TaskDefinition" and r.urn in service.dependencies:
            arm = str(r.get("runtimePlatform.cpuArchitecture", "")).upper() == "ARM64"
            return _num(r.get("cpu"), 256) / 1024, _num(r.get("memory"), 512) / 1024, arm
    return 0.25, 0.5, True


def estimate(resources: Sequence[Resource], usage: Usage | None = None) -> Estimate:
    """Monthly cost per resource and the stack's budget (when it has one)."""
    usage = usage or Usage()
    lines: list[Line] = []
    notes: list[str] = []

    def add(r: Resource, fixed: float, used: float, basis: str) -> None:
        lines.append(Line(r.type, r.name, fixed, used, basis))

    lambdas = [r for r in resources if r.type == "aws:lambda/function:Function"]
    services = [r for r in resources if r.type == "aws:ecs/service:Service"]
    cloud_run = [r for r in resources if r.type == "gcp:cloudrunv2/service:Service"]
    budget: float | None = None
    month_requests = _per_month(usage.requests_per_day)
    month_tasks = _per_month(usage.tasks_per_day)

    for r in resources:
        t = r.type
        if t == "aws:ec2/natGateway:NatGateway":
            add(r, _price("aws.nat_gateway_hour") * HOURS,
                _price("aws.nat_gateway_gb") * usage.nat_gb_per_month / max(1, sum(
                    x.type == t for x in resources)), "NAT gateway-hours + GB processed")
        elif t == "aws:ec2/eip:Eip":
            add(r, _price("aws.public_ipv4_hour") * HOURS, 0, "public IPv4 address-hours")
        elif t == "aws:ec2/vpcEndpoint:VpcEndpoint" and r.get("vpcEndpointType") == "Interface":
            azs = max(1, len(r.get("subnetIds") or []))
            add(r, _price("aws.interface_endpoint_az_hour") * HOURS * azs, 0, f"interface endpoint in {azs} AZ(s)")
        elif t == "aws:lb/loadBalancer:LoadBalancer":
            add(r, _price("aws.alb_hour") * HOURS, _price("aws.alb_lcu_hour") * HOURS * 1, "ALB-hours + ~1 LCU")
        elif t == "aws:wafv2/webAcl:WebAcl":
            rules = len(r.get("rules") or [])
            add(r, _price("aws.waf_acl_month") + _price("aws.waf_rule_month") * rules,
                _price("aws.waf_million_requests") * month_requests / 1e6, f"web ACL + {rules} rule(s) + requests")
        elif t == "aws:ecs/service:Service":
            vcpu, gb, arm = _task_size(resources, r)
            arch = "arm" if arm else "x86"
            per_task = (vcpu * _price(f"aws.fargate_{arch}_vcpu_hour") + gb * _price(f"aws.fargate_{arch}_gb_hour")) * HOURS
            floor = max(_num(r.get("desiredCount"), 1), _min_capacity(resources, r))
            busy = 0.0
            if "worker" in r.name:  # tasks beyond what the floor absorbs: extra task-hours
                extra_hours = max(0.0, month_tasks * usage.task_seconds / 3600 - floor * HOURS)
                busy = extra_hours * per_task / HOURS
            add(r, per_task * floor, busy, f"{floor:g} task(s) x {vcpu:g} vCPU/{gb:g} GB Fargate {arch}, always on")
        elif t == "aws:rds/cluster:Cluster":
            instances = sum(1 for x in resources if x.type == "aws:rds/clusterInstance:ClusterInstance"
                            and r.urn in x.dependencies) or 1
            acu = _num(r.get("serverlessv2ScalingConfiguration.minCapacity"), 0.5)
            add(r, _price("aws.aurora_serverless_acu_hour") * HOURS * acu * instances,
                _price("aws.aurora_storage_gb_month") * usage.gb_stored,
                f"{instances} Serverless v2 instance(s) at the {acu:g} ACU floor + storage")
        elif t == "aws:elasticache/replicationGroup:ReplicationGroup":
            node = str(r.get("nodeType") or "cache.t4g.micro")
            nodes = max(1, int(_num(r.get("numCacheClusters"), 1)))
            hourly = PRICES.get(f"aws.{node}_hour")
            if hourly is None:
                notes.append(f"{r.name}: no price for node type {node}; priced as cache.t4g.medium")
                hourly = _price("aws.cache.t4g.medium_hour")
            if str(r.get("engine")) == "valkey":
                hourly *= 1 - _price("aws.valkey_discount")
            add(r, hourly * HOURS * nodes, 0, f"{nodes} x {node} ({r.get('engine') or 'redis'}) node-hours")
        elif t == "aws:lambda/function:Function":
            gb = _num(r.get("memorySize"), 128) / 1024
            arm = "arm64" in (r.get("architectures") or [])
            seconds = month_tasks * usage.task_seconds if "worker" in r.name else month_requests * 0.2
            invocations = month_tasks if "worker" in r.name else month_requests
            rate = _price("aws.lambda_arm_gb_second" if arm else "aws.lambda_x86_gb_second")
            add(r, 0, gb * seconds * rate + invocations / 1e6 * _price("aws.lambda_million_requests"),
                f"{gb:g} GB x {seconds:,.0f} s/month + {invocations:,.0f} invocations")
        elif t == "aws:apigatewayv2/api:Api":
            if str(r.get("protocolType")) == "WEBSOCKET":
                add(r, 0, _per_month(usage.websocket_messages_per_day) / 1e6 * _price("aws.websocket_million_messages"),
                    "WebSocket messages")
            else:
                add(r, 0, month_requests / 1e6 * _price("aws.http_api_million_requests"), "HTTP API requests")
        elif t == "aws:sqs/queue:Queue" and not r.name.endswith("-dlq"):
            add(r, 0, month_tasks * 4 / 1e6 * _price("aws.sqs_million_requests"), "~4 requests per task")
        elif t == "aws:dynamodb/table:Table":
            share = 1 / max(1, sum(x.type == t for x in resources))
            add(r, 0, (month_tasks * 10 / 1e6 * _price("aws.dynamodb_million_writes")
                       + month_tasks * 10 / 1e6 * _price("aws.dynamodb_million_reads")) * share
                + _price("aws.dynamodb_gb_month") * usage.gb_stored * share, "on-demand ~10 writes+reads per task")
        elif t == "aws:kms/key:Key":
            add(r, _price("aws.kms_key_month"), 0, "customer-managed key")
        elif t == "aws:secretsmanager/secret:Secret":
            add(r, _price("aws.secret_month"), 0, "secret-month")
        elif t == "aws:cloudwatch/metricAlarm:MetricAlarm":
            add(r, _price("aws.alarm_month"), 0, "standard alarm")
        elif t == "aws:cloudwatch/dashboard:Dashboard":
            add(r, _price("aws.dashboard_month"), 0, "dashboard (the first 3 per account are free)")
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            share = 1 / max(1, sum(x.type == t for x in resources))
            add(r, 0, _price("aws.logs_ingest_gb") * usage.gb_stored * share, "log ingestion (share of gb_stored)")
        elif t == "aws:budgets/budget:Budget":
            budget = (budget or 0) + _num(r.get("limitAmount"))
        elif t == "gcp:cloudrunv2/service:Service":
            vcpu = _num(str(r.get("template.containers.0.resources.limits.cpu", "1")).rstrip("m"), 1)
            gib = _num(str(r.get("template.containers.0.resources.limits.memory", "512Mi")).removesuffix("Mi"), 512) / 1024
            floor = _num(r.get("template.scaling.minInstanceCount"), 0)
            idle = floor * HOURS * 3600 * (vcpu * _price("gcp.run_idle_vcpu_second") + gib * _price("gcp.run_idle_gib_second"))
            busy_seconds = month_tasks * usage.task_seconds if "worker" in r.name else month_requests * 0.2
            busy = busy_seconds * (vcpu * _price("gcp.run_vcpu_second") + gib * _price("gcp.run_gib_second"))
            busy += (month_requests if "worker" not in r.name else 0) / 1e6 * _price("gcp.run_million_requests")
            add(r, idle, busy, f"{floor:g} minimum instance(s) of {vcpu:g} vCPU/{gib:g} GiB + busy time")
        elif t == "gcp:redis/instance:Instance":
            gb = _num(r.get("memorySizeGb"), 1)
            tier = "standard" if str(r.get("tier")).upper() == "STANDARD_HA" else "basic"
            add(r, _price(f"gcp.memorystore_{tier}_gb_hour") * gb * HOURS, 0, f"Memorystore {tier} {gb:g} GB")
        elif t == "gcp:sql/databaseInstance:DatabaseInstance":
            tier = str(r.get("settings.tier") or "db-custom-1-3840")
            parts = tier.split("-")
            vcpu, mem = (_num(parts[2], 1), _num(parts[3], 3840) / 1024) if len(parts) == 4 else (1.0, 3.75)
            ha = 2 if str(r.get("settings.availabilityType")) == "REGIONAL" else 1
            disk = _num(r.get("settings.diskSize"), 10)
            add(r, ha * HOURS * (vcpu * _price("gcp.sql_vcpu_hour") + mem * _price("gcp.sql_gb_hour"))
                + disk * _price("gcp.sql_ssd_gb_month") * ha, 0, f"{tier} x{ha} + {disk:g} GB SSD")
        elif t == "gcp:secretmanager/secretVersion:SecretVersion":
            add(r, _price("gcp.secret_version_month"), 0, "active secret version")
        elif t == "gcp:billing/budget:Budget":
            budget = (budget or 0) + _num(r.get("amount.specifiedAmount.units"))
    if usage.tokens_per_task and usage.usd_per_million_tokens:
        lines.append(Line("model", "tokens", 0, month_tasks * usage.tokens_per_task / 1e6 * usage.usd_per_million_tokens,
                          f"{usage.tokens_per_task} tokens/task at ${usage.usd_per_million_tokens}/M"))
    if not (lambdas or services or cloud_run) and any(r.type.startswith(("kubernetes:", "docker:")) for r in resources):
        notes.append("runs on your own cluster or machine: its compute is not priced here (see the requests and "
                     "limits in the plan for the capacity it needs)")
    lines.sort(key=lambda line: (-line.total, line.type, line.name))
    return Estimate(lines, usage, budget, notes)


def _min_capacity(resources: Sequence[Resource], service: Resource) -> float:
    name = str(service.get("name") or "")
    for r in resources:
        if r.type == "aws:appautoscaling/target:Target" and name and name in str(r.get("resourceId") or ""):
            return _num(r.get("minCapacity"), 0)
    return 0
