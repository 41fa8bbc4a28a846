"""LoadBalancer block on the offline plan: HTTPS + redirect only with a certificate, /healthz target
health, public ingress on the listener ports only, private encrypted expiring access logs."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.aws import LoadBalancer

from agent_infra.offline import Plan, synthesize

LISTENER = "aws:lb/listener:Listener"
RULE_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        base = {"vpc_id": "vpc-1", "public_subnet_ids": ["subnet-a", "subnet-b"]}
        LoadBalancer("plain", base)
        LoadBalancer("tls", {**base, "certificate_arn": CERT, "idle_timeout_seconds": 600, "target_port": 9000,
                             "deletion_protection": True, "access_log_retention_days": 365})
    return synthesize(program, stack="prod")


def _listeners(plan: Plan, lb: str) -> dict[str, dict[str, object]]:
    return {r.name: r.inputs for r in plan.of_type(LISTENER) if r.name.startswith(f"{lb}-")}


def test_https_listener_and_redirect_only_with_a_certificate(plan: Plan) -> None:
    tls = _listeners(plan, "tls")
    assert set(tls) == {"tls-https", "tls-http"}
    https = tls["tls-https"]
    assert (https["port"], https["protocol"], https["certificateArn"]) == (443, "HTTPS", CERT)
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    target_group = plan.one("aws:lb/targetGroup:TargetGroup", "tls-api").outputs["arn"]
    assert https["defaultActions"] == [{"type": "forward", "targetGroupArn": target_group}]
    assert tls["tls-http"]["defaultActions"] == [{"type": "redirect", "redirect": {
        "port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}}]

    plain = _listeners(plan, "plain")
    assert set(plain) == {"plain-http"}
    assert plain["plain-http"]["defaultActions"][0]["type"] == "forward"
    endpoints = {r.name: r.outputs["endpoint"] for r in plan.of_type("agent-infra:aws:LoadBalancer")}
    assert endpoints["tls"].startswith("https://") and endpoints["plain"].startswith("http://")


def test_public_ingress_only_on_listener_ports(plan: Plan) -> None:
    rules = {r.name: (r.inputs["cidrIpv4"], r.inputs["fromPort"], r.inputs["toPort"]) for r in plan.of_type(RULE_IN)}
    assert rules == {"plain-public-80": ("0.0.0.0/0", 80, 80), "tls-public-80": ("0.0.0.0/0", 80, 80),
                     "tls-public-443": ("0.0.0.0/0", 443, 443)}


def test_target_group_health_checks_healthz(plan: Plan) -> None:
    group = plan.one("aws:lb/targetGroup:TargetGroup", "tls-api").inputs
    assert group["healthCheck"] == {"path": "/healthz", "protocol": "HTTP", "matcher": "200", "interval": 15,
                                    "timeout": 5, "healthyThreshold": 2, "unhealthyThreshold": 3}
    assert (group["port"], group["targetType"], group["deregistrationDelay"]) == (9000, "ip", 30)


def test_alb_settings(plan: Plan) -> None:
    tls = plan.one("aws:lb/loadBalancer:LoadBalancer", "tls").inputs
    assert (tls["internal"], tls["idleTimeout"], tls["enableDeletionProtection"]) == (False, 600, True)
    assert tls["dropInvalidHeaderFields"] is True and tls["desyncMitigationMode"] == "defensive"
    plain = plan.one("aws:lb/loadBalancer:LoadBalancer", "plain").inputs
    assert (plain["idleTimeout"], plain["enableDeletionProtection"]) == (300, False)


def test_access_logs_go_to_a_private_encrypted_expiring_bucket(plan: Plan) -> None:
    bucket = plan.one("aws:s3/bucket:Bucket", "tls-access-logs")
    lb = plan.one("aws:lb/loadBalancer:LoadBalancer", "tls").inputs
    assert lb["accessLogs"] == {"bucket": bucket.id, "enabled": True, "prefix": "tls"}
    block = plan.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "tls-access-logs").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    sse = plan.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                   "tls-access-logs").inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    lifecycle = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "tls-access-logs")
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 365}
    policy = json.loads(plan.one("aws:s3/bucketPolicy:BucketPolicy", "tls-access-logs").inputs["policy"])
    writer, tls_only = policy["Statement"]
    assert writer["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}  # us-east-1's ELB account
    assert (writer["Action"], writer["Resource"]) == ("s3:PutObject", f"{bucket.outputs['arn']}/*/AWSLogs/123456789012/*")
    assert tls_only["Effect"] == "Deny" and tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
