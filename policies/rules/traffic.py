"""Public entry points are throttled; everything has a health check and a bounded timeout."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..engine import Context, Finding, Resource, Rule, is_unknown, json_value
from ._common import (
    CLOUD_RUN_SERVICE,
    ECS_TASK,
    EVENT_SOURCE_MAPPING,
    HTTP_INTEGRATION,
    HTTP_STAGE,
    K8S_INGRESS,
    K8S_WORKLOADS,
    LAMBDA,
    LAMBDA_URL,
    LISTENERS,
    LOAD_BALANCERS,
    SQS_QUEUE,
    TARGET_GROUPS,
    WEB_ACL,
    WEB_ACL_ASSOCIATION,
    as_dict,
    as_list,
    containers,
    fmt,
    number,
    of_type,
    references,
    resource_rule,
    stack_rule,
)

RULES: list[Rule] = []


# --- Rate limiting ---------------------------------------------------------------------------------

@resource_rule(
    RULES, name="api-gateway-throttling", area="traffic", level="mandatory", severity="high", types={HTTP_STAGE},
    description="Checks whether every API Gateway stage throttles requests (rate and burst limits).",
    remediation="Set the stage's defaultRouteSettings.throttlingRateLimit and throttlingBurstLimit (agent-infra: "
                "rate_limits.requests_per_second and rate_limits.burst).",
    config={"maxRateLimit": {"type": "number", "default": 10000,
                             "description": "Highest acceptable steady-state limit, requests per second."},
            "maxBurstLimit": {"type": "number", "default": 5000,
                              "description": "Highest acceptable burst limit, requests."}},
)
def api_gateway_throttling(stage: Resource, ctx: Context) -> Iterator[str]:
    for key, bound in (("throttlingRateLimit", "maxRateLimit"), ("throttlingBurstLimit", "maxBurstLimit")):
        value = stage.get(f"defaultRouteSettings.{key}")
        if is_unknown(value):
            continue
        limit = number(value)
        if limit is None or limit <= 0:
            yield f"defaultRouteSettings.{key} is {fmt(limit)}; the stage accepts unlimited traffic"
        elif limit > ctx[bound]:
            yield f"defaultRouteSettings.{key} is {fmt(limit)}, above the allowed {fmt(ctx[bound])}"


def is_public_load_balancer(lb: Resource) -> bool:
    internal, kind = lb.get("internal"), lb.get("loadBalancerType", "application")
    return internal is not True and not is_unknown(internal) and kind in ("application", None)


def has_rate_rule(acl: Resource) -> bool | None:
    rules = acl.get("rules")
    if is_unknown(rules):
        return None
    for rule in as_list(rules):
        statement = as_dict(rule).get("statement") if isinstance(rule, dict) else None
        if isinstance(statement, dict) and statement.get("rateBasedStatement"):
            return True
    rule_json = json_value(acl.get("ruleJson"))
    if is_unknown(rule_json):
        return None
    return "rateBasedStatement" in str(rule_json) or "RateBasedStatement" in str(rule_json)


@stack_rule(
    RULES, name="public-load-balancer-waf-rate-limit", area="traffic", level="mandatory", severity="high",
    description="Checks whether every internet-facing application load balancer has a WAF web ACL with a "
                "rate-based rule.",
    remediation="Associate an aws.wafv2.WebAcl that contains a rateBasedStatement rule with the load balancer "
                "(aws.wafv2.WebAclAssociation); agent-infra does this unless aws.waf is false.",
)
def public_load_balancer_waf(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    acls = of_type(resources, WEB_ACL)
    associations = of_type(resources, WEB_ACL_ASSOCIATION)
    for lb in of_type(resources, LOAD_BALANCERS):
        if not is_public_load_balancer(lb):
            continue
        linked = [a for a in associations if references(a, lb, a.get("resourceArn"))]
        if not linked:
            yield Finding("internet-facing load balancer has no WAF web ACL association", urn=lb.urn)
            continue
        verdicts = [has_rate_rule(acl) for a in linked for acl in acls if references(a, acl, a.get("webAclArn"))]
        if verdicts and not any(v is None or v for v in verdicts):
            yield Finding("the WAF web ACL of this load balancer has no rate-based rule", urn=lb.urn)


RATE_LIMIT_ANNOTATIONS = [
    "nginx.ingress.kubernetes.io/limit-rps", "nginx.ingress.kubernetes.io/limit-rpm",
    "nginx.ingress.kubernetes.io/limit-connections", "traefik.ingress.kubernetes.io/router.middlewares",
    "haproxy.org/rate-limit-requests", "konghq.com/plugins",
]


@resource_rule(
    RULES, name="ingress-rate-limit", area="traffic", level="mandatory", severity="high", types={K8S_INGRESS},
    description="Checks whether every Kubernetes Ingress sets a rate-limit annotation for its controller.",
    remediation="Annotate the Ingress, e.g. nginx.ingress.kubernetes.io/limit-rps: \"50\" (nginx) or a traefik "
                "rateLimit middleware in traefik.ingress.kubernetes.io/router.middlewares.",
    config={"annotations": {"type": "array", "items": {"type": "string"}, "default": RATE_LIMIT_ANNOTATIONS,
                            "description": "Annotations that count as a rate limit."}},
)
def ingress_rate_limit(ingress: Resource, ctx: Context) -> Iterator[str]:
    annotations = ingress.get("metadata.annotations")
    if is_unknown(annotations):
        return
    if not any(key in as_dict(annotations) for key in ctx["annotations"]):
        yield "no rate-limit annotation (looked for " + ", ".join(ctx["annotations"][:3]) + ", ...)"


@stack_rule(
    RULES, name="public-function-throttling", area="traffic", level="mandatory", severity="high",
    description="Checks whether functions and services reachable without a gateway (Lambda function URLs with "
                "auth NONE, public Cloud Run services) have a concurrency or instance cap.",
    remediation="Set reservedConcurrentExecutions on the Lambda function behind a public function URL (agent-infra: "
                "scaling.reserved_concurrency) or template.scaling.maxInstanceCount on the Cloud Run service; "
                "better, put the entry point behind API Gateway or a load balancer with WAF.",
)
def public_function_throttling(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    functions = of_type(resources, LAMBDA)
    for url in of_type(resources, LAMBDA_URL):
        if url.get("authorizationType") != "NONE":
            continue
        for function in (f for f in functions if references(url, f, url.get("functionName"))):
            if function.get("reservedConcurrentExecutions") is None:
                yield Finding(f"function {function.name!r} has a public URL and no reservedConcurrentExecutions",
                              urn=function.urn)
    for service in of_type(resources, CLOUD_RUN_SERVICE):
        ingress = service.get("ingress", "INGRESS_TRAFFIC_ALL")
        cap = service.get("template.scaling.maxInstanceCount")
        if ingress == "INGRESS_TRAFFIC_ALL" and cap is None:
            yield Finding("public Cloud Run service has no template.scaling.maxInstanceCount", urn=service.urn)


@stack_rule(
    RULES, name="https-entry-points", area="traffic", level="advisory", severity="medium",
    description="Checks whether public load balancer listeners and Ingresses serve HTTPS (plain HTTP only "
                "redirects).",
    remediation="Give the load balancer an ACM certificate (agent-infra: aws.certificate_arn) so port 80 redirects "
                "to an HTTPS listener; give the Ingress a tls section (kubernetes.host and tls_secret, or "
                "cert-manager).",
)
def https_entry_points(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    public = [lb for lb in of_type(resources, LOAD_BALANCERS) if is_public_load_balancer(lb)]
    for listener in of_type(resources, LISTENERS):
        if not any(lb.urn in listener.dependencies for lb in public) or listener.get("protocol", "HTTP") != "HTTP":
            continue
        actions = listener.get("defaultActions")
        if is_unknown(actions):
            continue
        if not any(as_dict(a).get("type") == "redirect" and
                   as_dict(as_dict(a).get("redirect")).get("protocol") == "HTTPS" for a in as_list(actions)):
            yield Finding(f"listener on port {fmt(number(listener.get('port')))} serves plain HTTP", urn=listener.urn)
    for ingress in of_type(resources, K8S_INGRESS):
        tls = ingress.get("spec.tls")
        if tls is None or (isinstance(tls, list) and not tls):
            yield Finding("Ingress has no tls section", urn=ingress.urn)


# --- Health checks -----------------------------------------------------------------------------------

@resource_rule(
    RULES, name="target-group-health-check", area="traffic", level="mandatory", severity="high",
    types=TARGET_GROUPS,
    description="Checks whether every load balancer target group has an enabled health check on a path.",
    remediation="Set healthCheck {enabled: true, path: \"/healthz\", matcher: \"200\", interval: 15, "
                "healthyThreshold: 2, unhealthyThreshold: 3} on the target group.",
)
def target_group_health_check(group: Resource, ctx: Context) -> Iterator[str]:
    check = group.get("healthCheck")
    if is_unknown(check) or group.get("targetType") == "lambda":
        return
    check = as_dict(check)
    if check.get("enabled") is False:
        yield "healthCheck.enabled is false"
    elif group.get("protocol", "HTTP") in ("HTTP", "HTTPS") and not check.get("path"):
        yield "healthCheck.path is not set; the default '/' may not tell a stuck agent from a healthy one"


@resource_rule(
    RULES, name="container-health-probes", area="traffic", level="mandatory", severity="medium",
    types=K8S_WORKLOADS | {ECS_TASK},
    description="Checks whether every container that serves a port has a readiness and a liveness check.",
    remediation="Kubernetes: add readinessProbe and livenessProbe (httpGet /healthz and /readyz); ECS: add a "
                "container healthCheck {command: [\"CMD-SHELL\", \"curl -f localhost:8000/healthz\"]}.",
)
def container_health_probes(resource: Resource, ctx: Context) -> Iterator[str]:
    for container in containers(resource):
        if container.platform == "kubernetes" and as_list(container.get("ports")):
            missing = [p for p in ("readinessProbe", "livenessProbe") if container.get(p) is None]
            if missing:
                yield f"{container.label} exposes a port but has no {' and no '.join(missing)}"
        elif container.platform == "ecs" and as_list(container.get("portMappings")) and not container.get("healthCheck"):
            yield f"{container.label} exposes a port but has no healthCheck"


# --- Timeouts -----------------------------------------------------------------------------------------

@resource_rule(
    RULES, name="function-timeout-bounds", area="traffic", level="mandatory", severity="medium",
    types={LAMBDA, CLOUD_RUN_SERVICE},
    description="Checks whether function and service request timeouts are set explicitly and within bounds.",
    remediation="Set the Lambda `timeout` (agent-infra: timeouts.run_seconds) or the Cloud Run template "
                "`timeout` between the configured minimum and maximum.",
    fixes={LAMBDA: "Set the function's timeout between minSeconds and maxSeconds (agent-infra: timeouts.run_seconds).",
           CLOUD_RUN_SERVICE: "Set template.timeout (e.g. \"300s\") between minSeconds and maxSeconds."},
    config={"minSeconds": {"type": "number", "default": 10, "description": "Shortest acceptable timeout."},
            "maxSeconds": {"type": "number", "default": 900, "description": "Longest acceptable timeout."}},
)
def function_timeout_bounds(resource: Resource, ctx: Context) -> Iterator[str]:
    key = "timeout" if resource.type == LAMBDA else "template.timeout"
    raw = resource.get(key)
    if is_unknown(raw):
        return
    seconds = number(raw)
    if seconds is None:
        if resource.type == LAMBDA:
            yield "timeout is not set (Lambda's default of 3 s cuts agent runs short)"
        return
    if not ctx["minSeconds"] <= seconds <= ctx["maxSeconds"]:
        yield f"{key} is {fmt(seconds)} s, outside {fmt(ctx['minSeconds'])}-{fmt(ctx['maxSeconds'])} s"


@resource_rule(
    RULES, name="request-timeout-bounds", area="traffic", level="mandatory", severity="medium",
    types={HTTP_INTEGRATION} | LOAD_BALANCERS,
    description="Checks whether API Gateway integration timeouts and load balancer idle timeouts are within "
                "bounds.",
    remediation="Set the integration's timeoutMilliseconds (agent-infra: timeouts.request_seconds) and the "
                "load balancer's idleTimeout (timeouts.idle_seconds) within the configured bounds; use the "
                "webhook/queue path for longer work.",
    fixes={HTTP_INTEGRATION: "Set timeoutMilliseconds at most maxIntegrationSeconds x 1000 (agent-infra: "
                             "timeouts.request_seconds); send longer work through the webhook queue.",
           **dict.fromkeys(LOAD_BALANCERS, "Set idleTimeout between minIdleSeconds and maxIdleSeconds (agent-infra: "
                           "timeouts.idle_seconds).")},
    config={"maxIntegrationSeconds": {"type": "number", "default": 30,
                                      "description": "Longest API Gateway integration timeout."},
            "minIdleSeconds": {"type": "number", "default": 30, "description": "Shortest load balancer idle timeout."},
            "maxIdleSeconds": {"type": "number", "default": 4000,
                               "description": "Longest load balancer idle timeout."}},
)
def request_timeout_bounds(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type == HTTP_INTEGRATION:
        millis = number(resource.get("timeoutMilliseconds"))
        if millis is not None and millis > ctx["maxIntegrationSeconds"] * 1000:
            yield (f"timeoutMilliseconds is {fmt(millis)}, above {fmt(ctx['maxIntegrationSeconds'] * 1000)}")
        return
    if resource.get("loadBalancerType", "application") != "application":
        return
    idle = number(resource.get("idleTimeout", 60))
    if idle is not None and not ctx["minIdleSeconds"] <= idle <= ctx["maxIdleSeconds"]:
        yield (f"idleTimeout is {fmt(idle)} s, outside {fmt(ctx['minIdleSeconds'])}-{fmt(ctx['maxIdleSeconds'])} s")


@stack_rule(
    RULES, name="queue-visibility-timeout", area="traffic", level="mandatory", severity="high",
    description="Checks whether each SQS queue's visibility timeout is at least the configured multiple of its "
                "consuming function's timeout.",
    remediation="Raise the queue's visibilityTimeoutSeconds to at least 6x the consumer's timeout (agent-infra "
                "derives it from timeouts.run_seconds unless queue.visibility_timeout_seconds is set).",
    config={"multiplier": {"type": "number", "default": 6,
                           "description": "Visibility timeout / function timeout (AWS recommends 6)."}},
)
def queue_visibility_timeout(resources: Sequence[Resource], ctx: Context) -> Iterator[Finding]:
    queues, functions = of_type(resources, SQS_QUEUE), of_type(resources, LAMBDA)
    for mapping in of_type(resources, EVENT_SOURCE_MAPPING):
        queue = next((q for q in queues if references(mapping, q, mapping.get("eventSourceArn"))), None)
        function = next((f for f in functions if references(mapping, f, mapping.get("functionName"))), None)
        if queue is None or function is None:
            continue
        visibility = number(queue.get("visibilityTimeoutSeconds", 30))
        timeout = number(function.get("timeout", 3))
        if visibility is None or timeout is None:
            continue
        needed = ctx["multiplier"] * timeout
        if visibility < needed:
            yield Finding(f"visibilityTimeoutSeconds is {fmt(visibility)} s but consumer {function.name!r} may run "
                          f"{fmt(timeout)} s; needs at least {fmt(needed)} s ({fmt(ctx['multiplier'])}x)",
                          urn=queue.urn)


