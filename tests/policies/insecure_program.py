"""A deliberately insecure Pulumi program built from raw resources: every line breaks a policy.

Used in-process (`agent_infra.offline.synthesize(run)`) and as a project's `__main__.py` (the CLI test
writes `exec(SOURCE)` into a temporary Pulumi project).
"""

SOURCE = '''
import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

aws.sqs.Queue("jobs")
aws.lambda_.Function(
    "api", role="arn:aws:iam::123456789012:role/api", runtime="python3.12", handler="app.main",
    code=pulumi.AssetArchive({}),
    environment={"variables": {"OPENAI_API_KEY": "sk-proj-0123456789abcdefghijklmnop", "LOG_LEVEL": "info"}})
aws.cloudwatch.LogGroup("logs")
aws.iam.RolePolicy("admin", role="api", policy=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}]}))
aws.ec2.SecurityGroup("ssh", ingress=[{"protocol": "tcp", "from_port": 22, "to_port": 22,
                                       "cidr_blocks": ["0.0.0.0/0"]}])
aws.apigatewayv2.Stage("stage", api_id="abc123", name="$default", auto_deploy=True)
aws.rds.Cluster("db", engine="aurora-postgresql", master_username="app", master_password="hunter2",
                skip_final_snapshot=True)
k8s.apps.v1.Deployment("web", spec={
    "selector": {"match_labels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "web", "image": "nginx:latest",
                                          "ports": [{"container_port": 80}]}]}}})
'''

EXPECTED_MANDATORY = {
    ("api-gateway-access-logs", "stage"),
    ("api-gateway-throttling", "stage"),
    ("backups-enabled", "db"),
    ("budget-with-notifications", None),
    ("container-health-probes", "web"),
    ("container-non-root", "web"),
    ("container-read-only-root-fs", "web"),
    ("container-resource-limits", "web"),
    ("encryption-at-rest", "db"),
    ("encryption-at-rest", "jobs"),
    ("function-timeout-bounds", "api"),
    ("iam-no-wildcard-admin", "admin"),
    ("log-group-retention", "logs"),
    ("no-latest-image", "web"),
    ("no-plaintext-secrets", "api"),
    ("no-plaintext-secrets", "db"),
    ("no-public-ingress", "ssh"),
    ("queue-has-dlq", "jobs"),
}


def run() -> None:
    exec(compile(SOURCE, "insecure_program", "exec"), {"__name__": "__main__"})
