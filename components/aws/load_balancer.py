"""The public Application Load Balancer: HTTPS (HTTP redirected) when a certificate is given,
WebSocket-friendly idle timeout, /healthz target health checks, access logs in S3."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args

Value = str | pulumi.Output[str]

# Regions older than August 2022 deliver ALB access logs from a regional ELB account; newer ones
# from the log-delivery service principal.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "ca-central-1": "985666609251", "eu-central-1": "054676820928",
    "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-west-3": "009996457667",
    "eu-north-1": "897822967062", "ap-northeast-1": "582318560864", "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266", "ap-south-1": "718504428378",
    "sa-east-1": "507241528517"}


class LoadBalancerArgs(ComponentArgs):
    """Internet-facing ALB in the public subnets. Cost: about $16/month plus $0.008 per LCU-hour;
    access logs cost S3 storage (expired after `access_log_retention_days`)."""

    vpc_id: Value
    public_subnet_ids: list[Value]
    target_port: int = Field(8000, ge=1, le=65_535)
    """Port the tasks listen on."""
    certificate_arn: str | None = None
    """ACM certificate: listen on 443 (TLS 1.2+) and redirect 80 to it. None: HTTP on 80 only,
    which is for development; set `aws.certificate_arn` in production."""
    idle_timeout_seconds: int = Field(300, ge=1, le=4_000)
    """Idle connection timeout; long enough for WebSocket sessions and streamed agent runs."""
    health_check_path: str = "/healthz"
    """Target-group health check path (the app's liveness endpoint)."""
    deregistration_delay_seconds: int = Field(30, ge=0, le=3_600)
    """How long a draining target keeps in-flight requests before it is removed."""
    access_log_retention_days: int = Field(90, ge=1)
    """Days access logs are kept in S3."""
    deletion_protection: bool = False
    """Refuse deletion of the ALB (production)."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["listener", "load_balancer", "log_bucket", "log_bucket_encryption", "log_bucket_lifecycle", "log_bucket_ownership", "log_bucket_policy", "log_bucket_public_access", "log_bucket_versioning", "security_group", "security_group_rule", "target_group"], Transform] = {}
    """Escape hatch per child role (`listener`, `load_balancer`, `log_bucket`, `log_bucket_encryption`, `log_bucket_lifecycle`, `log_bucket_ownership`, `log_bucket_policy`, `log_bucket_public_access`, `log_bucket_versioning`, `security_group`, `security_group_rule`, `target_group`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class LoadBalancer(pulumi.ComponentResource):
    """`load_balancer`, `target_group`, listeners, `security_group` and the access-log bucket."""

    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    """The ALB's security group; the API service's only allowed ingress source."""
    endpoint: pulumi.Output[str]
    """`https://<dns>` with a certificate, else `http://<dns>`."""

    def __init__(self, name: str, args: LoadBalancerArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(LoadBalancerArgs, args, name)
        super().__init__("agent-infra:aws:LoadBalancer", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        https = args.certificate_arn is not None
        ports = [80, 443] if https else [80]
        self.security_group = child(
            "security_group", aws.ec2.SecurityGroup, name, vpc_id=args.vpc_id, description=f"{name} public ALB")
        for port in ports:
            child("security_group_rule", aws.vpc.SecurityGroupIngressRule, f"{name}-public-{port}",
                  security_group_id=self.security_group.id, ip_protocol="tcp", from_port=port, to_port=port,
                  cidr_ipv4="0.0.0.0/0", description=f"public {'HTTPS' if port == 443 else 'HTTP'}")
        self.security_group_id = self.security_group.id

        self.log_bucket = child("log_bucket", aws.s3.Bucket, f"{name}-access-logs",
                                bucket=physical_name(f"{name}-alb-logs", 63).lower(), force_destroy=False)
        child("log_bucket_public_access", aws.s3.BucketPublicAccessBlock, f"{name}-access-logs", bucket=self.log_bucket.id,
              block_public_acls=True, block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
        child("log_bucket_ownership", aws.s3.BucketOwnershipControls, f"{name}-access-logs", bucket=self.log_bucket.id,
              rule={"object_ownership": "BucketOwnerEnforced"})
        # ALB access logs support only SSE-S3 (not KMS).
        child("log_bucket_encryption", aws.s3.BucketServerSideEncryptionConfiguration, f"{name}-access-logs",
              bucket=self.log_bucket.id,
              rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}])
        child("log_bucket_versioning", aws.s3.BucketVersioning, f"{name}-access-logs", bucket=self.log_bucket.id,
              versioning_configuration={"status": "Enabled"})
        child("log_bucket_lifecycle", aws.s3.BucketLifecycleConfiguration, f"{name}-access-logs", bucket=self.log_bucket.id,
              rules=[{"id": "expire", "status": "Enabled", "filter": {},
                      "expiration": {"days": args.access_log_retention_days},
                      "noncurrent_version_expiration": {"noncurrent_days": 7},
                      "abort_incomplete_multipart_upload": {"days_after_initiation": 1}}])
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id
        bucket_policy = child(
            "log_bucket_policy", aws.s3.BucketPolicy, f"{name}-access-logs", bucket=self.log_bucket.id,
            policy=pulumi.Output.all(self.log_bucket.arn, region, account).apply(lambda a: _log_policy(*a)))

        self.load_balancer = child(
            "load_balancer", aws.lb.LoadBalancer, name, name=physical_name(name, 32),
            load_balancer_type="application", internal=False, subnets=list(args.public_subnet_ids),
            security_groups=[self.security_group.id], idle_timeout=args.idle_timeout_seconds,
            drop_invalid_header_fields=True, desync_mitigation_mode="defensive", enable_http2=True,
            enable_deletion_protection=args.deletion_protection,
            access_logs={"bucket": self.log_bucket.id, "enabled": True, "prefix": name},
            opts=pulumi.ResourceOptions(depends_on=[bucket_policy]))
        self.target_group = child(
            "target_group", aws.lb.TargetGroup, f"{name}-api", name=physical_name(f"{name}-api", 32),
            port=args.target_port, protocol="HTTP", target_type="ip", vpc_id=args.vpc_id,
            deregistration_delay=args.deregistration_delay_seconds,
            health_check={"path": args.health_check_path, "protocol": "HTTP", "matcher": "200",
                          "interval": 15, "timeout": 5, "healthy_threshold": 2, "unhealthy_threshold": 3})
        forward = [{"type": "forward", "target_group_arn": self.target_group.arn}]
        if https:
            child("listener", aws.lb.Listener, f"{name}-https", load_balancer_arn=self.load_balancer.arn, port=443,
                  protocol="HTTPS", certificate_arn=args.certificate_arn,
                  ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06", default_actions=forward)
            child("listener", aws.lb.Listener, f"{name}-http", load_balancer_arn=self.load_balancer.arn, port=80,
                  protocol="HTTP", default_actions=[{"type": "redirect", "redirect": {
                      "port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}}])
        else:
            child("listener", aws.lb.Listener, f"{name}-http", load_balancer_arn=self.load_balancer.arn, port=80,
                  protocol="HTTP", default_actions=forward)
        self.arn, self.arn_suffix = self.load_balancer.arn, self.load_balancer.arn_suffix
        self.target_group_arn, self.target_group_arn_suffix = self.target_group.arn, self.target_group.arn_suffix
        scheme = "https" if https else "http"
        self.endpoint = self.load_balancer.dns_name.apply(lambda dns: f"{scheme}://{dns}")
        self.register_outputs({"endpoint": self.endpoint, "arn": self.arn, "target_group_arn": self.target_group_arn})


def _log_policy(bucket_arn: str, region: str, account: str) -> str:
    elb_account = ELB_LOG_ACCOUNTS.get(region)
    principal: dict[str, str] = ({"AWS": f"arn:aws:iam::{elb_account}:root"} if elb_account
                                 else {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"})
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AlbAccessLogs", "Effect": "Allow", "Principal": principal, "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/*/AWSLogs/{account}/*"},
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
