"""Rate limiting, health checks and timeouts."""

from __future__ import annotations

import pytest
from agent_infra.policies.engine import UNKNOWN
from policy_helpers import messages, res, violations

STAGE = "aws:apigatewayv2/stage:Stage"
LB = "aws:lb/loadBalancer:LoadBalancer"
WAF = "aws:wafv2/webAcl:WebAcl"
ASSOC = "aws:wafv2/webAclAssociation:WebAclAssociation"
LAMBDA = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"


def test_api_gateway_throttling() -> None:
    ok = res(STAGE, {"defaultRouteSettings": {"throttlingRateLimit": 20, "throttlingBurstLimit": 40}})
    unknown = res(STAGE, {"defaultRouteSettings": {"throttlingRateLimit": UNKNOWN, "throttlingBurstLimit": UNKNOWN}})
    assert messages("api-gateway-throttling", ok, unknown) == []
    bad = res(STAGE, {"defaultRouteSettings": {"throttlingBurstLimit": 40}}, name="stage")
    assert messages("api-gateway-throttling", bad) == [
        "stage: defaultRouteSettings.throttlingRateLimit is unset; the stage accepts unlimited traffic"]
    high = res(STAGE, {"defaultRouteSettings": {"throttlingRateLimit": 50, "throttlingBurstLimit": 100}}, name="s")
    assert messages("api-gateway-throttling", high, config={"maxRateLimit": 10}) == [
        "s: defaultRouteSettings.throttlingRateLimit is 50, above the allowed 10"]


def _alb_stack(rules: list[dict[str, object]] | None, associate: bool = True) -> list[object]:
    lb = res(LB, {"internal": False, "loadBalancerType": "application"}, name="alb")
    acl = res(WAF, {"rules": rules or []}, name="acl")
    out: list[object] = [lb, acl]
    if associate:
        out.append(res(ASSOC, {"resourceArn": UNKNOWN, "webAclArn": UNKNOWN}, name="assoc", deps=(lb, acl)))
    return out


def test_public_load_balancer_waf_rate_limit() -> None:
    rate = [{"name": "rate", "statement": {"rateBasedStatement": {"limit": 1000, "aggregateKeyType": "IP"}}}]
    assert messages("public-load-balancer-waf-rate-limit", *_alb_stack(rate)) == []  # type: ignore[arg-type]
    assert messages("public-load-balancer-waf-rate-limit", *_alb_stack(rate, associate=False)) == [  # type: ignore[arg-type]
        "alb: internet-facing load balancer has no WAF web ACL association"]
    managed = [{"name": "common", "statement": {"managedRuleGroupStatement": {"name": "AWSManagedRulesCommonRuleSet"}}}]
    assert messages("public-load-balancer-waf-rate-limit", *_alb_stack(managed)) == [  # type: ignore[arg-type]
        "alb: the WAF web ACL of this load balancer has no rate-based rule"]
    internal = res(LB, {"internal": True}, name="internal")
    assert messages("public-load-balancer-waf-rate-limit", internal) == []


def test_ingress_rate_limit() -> None:
    ingress = "kubernetes:networking.k8s.io/v1:Ingress"
    ok = res(ingress, {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/limit-rps": "50"}}})
    bad = res(ingress, {"metadata": {"name": "agent"}}, name="ing")
    assert messages("ingress-rate-limit", ok) == []
    assert messages("ingress-rate-limit", bad) == [
        "ing: no rate-limit annotation (looked for nginx.ingress.kubernetes.io/limit-rps, "
        "nginx.ingress.kubernetes.io/limit-rpm, nginx.ingress.kubernetes.io/limit-connections, ...)"]


def test_target_group_health_check() -> None:
    tg = "aws:lb/targetGroup:TargetGroup"
    ok = res(tg, {"protocol": "HTTP", "healthCheck": {"enabled": True, "path": "/healthz"}})
    lambda_target = res(tg, {"targetType": "lambda"})
    assert messages("target-group-health-check", ok, lambda_target) == []
    assert messages("target-group-health-check", res(tg, {"protocol": "HTTP"}, name="tg"),
                    res(tg, {"healthCheck": {"enabled": False}}, name="off")) == [
        "tg: healthCheck.path is not set; the default '/' may not tell a stuck agent from a healthy one",
        "off: healthCheck.enabled is false"]


def test_container_health_probes() -> None:
    def deployment(container: dict[str, object], name: str = "d") -> object:
        return res("kubernetes:apps/v1:Deployment",
                   {"spec": {"template": {"spec": {"containers": [container]}}}}, name=name)

    probe = {"httpGet": {"path": "/healthz", "port": 8000}}
    ok = deployment({"name": "api", "ports": [{"containerPort": 8000}], "readinessProbe": probe, "livenessProbe": probe})
    worker = deployment({"name": "worker"})
    bad = deployment({"name": "api", "ports": [{"containerPort": 8000}], "livenessProbe": probe}, name="api")
    assert messages("container-health-probes", ok, worker) == []  # type: ignore[arg-type]
    assert messages("container-health-probes", bad) == [  # type: ignore[arg-type]
        "api: container 'api' exposes a port but has no readinessProbe"]


def test_function_timeout_bounds() -> None:
    assert messages("function-timeout-bounds", res(LAMBDA, {"timeout": 300}),
                    res(LAMBDA, {"timeout": UNKNOWN})) == []
    assert messages("function-timeout-bounds", res(LAMBDA, {}, name="f"), res(LAMBDA, {"timeout": 5}, name="g")) == [
        "f: timeout is not set (Lambda's default of 3 s cuts agent runs short)",
        "g: timeout is 5 s, outside 10-900 s"]
    run = res("gcp:cloudrunv2/service:Service", {"template": {"timeout": "3600s"}}, name="run")
    assert messages("function-timeout-bounds", run, config={"maxSeconds": 900}) == [
        "run: template.timeout is 3600 s, outside 10-900 s"]


def test_request_timeout_bounds() -> None:
    integration = "aws:apigatewayv2/integration:Integration"
    assert messages("request-timeout-bounds", res(integration, {"timeoutMilliseconds": 29000}),
                    res(LB, {"idleTimeout": 300})) == []
    assert messages("request-timeout-bounds", res(LB, {"idleTimeout": 10}, name="alb")) == [
        "alb: idleTimeout is 10 s, outside 30-4000 s"]
    assert messages("request-timeout-bounds", res(integration, {"timeoutMilliseconds": 29000}, name="i"),
                    config={"maxIntegrationSeconds": 10}) == ["i: timeoutMilliseconds is 29000, above 10000"]


@pytest.mark.parametrize(("visibility", "expected"), [
    (1800, []),
    (UNKNOWN, []),
    (600, ["q: visibilityTimeoutSeconds is 600 s but consumer 'worker' may run 300 s; needs at least 1800 s (6x)"]),
])
def test_queue_visibility_timeout(visibility: object, expected: list[str]) -> None:
    queue = res(QUEUE, {"visibilityTimeoutSeconds": visibility}, name="q")
    worker = res(LAMBDA, {"timeout": 300}, name="worker")
    mapping = res("aws:lambda/eventSourceMapping:EventSourceMapping", {"eventSourceArn": UNKNOWN}, name="m",
                  deps=(queue, worker))
    assert messages("queue-visibility-timeout", queue, worker, mapping) == expected


def test_public_function_throttling() -> None:
    fn = res(LAMBDA, {"reservedConcurrentExecutions": 20}, name="api")
    url = res("aws:lambda/functionUrl:FunctionUrl", {"authorizationType": "NONE", "functionName": UNKNOWN},
              name="url", deps=(fn,))
    run = "gcp:cloudrunv2/service:Service"
    internal = res(run, {"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY"})
    capped = res(run, {"template": {"scaling": {"maxInstanceCount": 10}}})
    assert messages("public-function-throttling", fn, url, internal, capped) == []
    open_fn = res(LAMBDA, {}, name="open")
    open_url = res("aws:lambda/functionUrl:FunctionUrl", {"authorizationType": "NONE"}, deps=(open_fn,))
    iam_url = res("aws:lambda/functionUrl:FunctionUrl", {"authorizationType": "AWS_IAM"}, deps=(open_fn,))
    assert messages("public-function-throttling", open_fn, open_url, iam_url, res(run, {}, name="svc")) == [
        "open: function 'open' has a public URL and no reservedConcurrentExecutions",
        "svc: public Cloud Run service has no template.scaling.maxInstanceCount"]


def test_https_entry_points() -> None:
    lb = res(LB, {"internal": False}, name="alb")
    listener = "aws:lb/listener:Listener"
    redirect = res(listener, {"port": 80, "protocol": "HTTP", "defaultActions": [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443"}}]}, deps=(lb,))
    https = res(listener, {"port": 443, "protocol": "HTTPS", "defaultActions": [{"type": "forward"}]}, deps=(lb,))
    ingress = "kubernetes:networking.k8s.io/v1:Ingress"
    tls = res(ingress, {"spec": {"tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}]}})
    assert messages("https-entry-points", lb, redirect, https, tls) == []
    plain = res(listener, {"port": 80, "protocol": "HTTP", "defaultActions": [{"type": "forward"}]}, name="http",
                deps=(lb,))
    found = violations("https-entry-points", lb, plain, res(ingress, {"spec": {}}, name="ing"))
    assert [(v.resource_name, v.message, v.level) for v in found] == [
        ("http", "listener on port 80 serves plain HTTP", "advisory"), ("ing", "Ingress has no tls section", "advisory")]
