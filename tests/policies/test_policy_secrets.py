"""no-plaintext-secrets: literal keys, secret-looking names, Pulumi secrets in plain env vars."""

from __future__ import annotations

import pytest
from agent_infra.policies.engine import SECRET, UNKNOWN
from policy_helpers import dumps, messages, res

LAMBDA = "aws:lambda/function:Function"


def fn(variables: object) -> object:
    return res(LAMBDA, {"environment": {"variables": variables}}, name="api")


def test_references_and_plain_settings_pass() -> None:
    ok = fn({"AGENT_LLM_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:k", "MAX_TOKENS": "4096",
             "AGENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q", "DB_PASSWORD": UNKNOWN,
             "AUTH_TOKEN": "arn:aws:ssm:us-east-1:1:parameter/token"})
    assert messages("no-plaintext-secrets", ok) == []


@pytest.mark.parametrize(("variables", "expected"), [
    ({"OPENAI": "sk-proj-abcdefghijklmnopqrstuvwx"}, "api: OPENAI holds a literal value that looks like an OpenAI API key"),
    ({"X": "AKIAABCDEFGHIJKLMNOP"}, "api: X holds a literal value that looks like an AWS access key id"),
    ({"DATABASE": "postgres://app:hunter2@db:5432/app"},
     "api: DATABASE holds a literal value that looks like a connection string with a password"),
    ({"DB_PASSWORD": "hunter2"}, "api: DB_PASSWORD has a secret-looking name and a literal value"),
    ({"LLM_KEY": SECRET}, "api: LLM_KEY is set from a Pulumi secret, so the value is stored in plain text in the "
                          "resource's configuration"),
])
def test_lambda_literal_secrets_fail(variables: dict[str, str], expected: str) -> None:
    assert messages("no-plaintext-secrets", fn(variables)) == [expected]


def test_whole_environment_secret_fails() -> None:
    function = res(LAMBDA, {"environment": SECRET}, name="api")
    assert messages("no-plaintext-secrets", function) == [
        "api: environment is set from a Pulumi secret, so the value is stored in plain text in the resource's "
        "configuration"]


def test_ecs_environment_fails_and_secrets_pass() -> None:
    task = res("aws:ecs/taskDefinition:TaskDefinition", {"containerDefinitions": dumps([{
        "name": "api", "image": "app:1",
        "environment": [{"name": "API_TOKEN", "value": "abc123"}, {"name": "PORT", "value": "8000"}],
        "secrets": [{"name": "LLM_API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:k"}]}])},
        name="task")
    assert messages("no-plaintext-secrets", task) == [
        "task: container 'api' env API_TOKEN has a secret-looking name and a literal value"]


def test_kubernetes_value_from_passes_and_configmap_fails() -> None:
    deployment = res("kubernetes:apps/v1:Deployment", {"spec": {"template": {"spec": {"containers": [{
        "name": "api", "image": "app:1",
        "env": [{"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "key"}}}]}]}}}})
    config_map = res("kubernetes:core/v1:ConfigMap", {"data": {"REDIS_PASSWORD": "changeme", "LOG_LEVEL": "info"}},
                     name="cm")
    assert messages("no-plaintext-secrets", deployment, config_map) == [
        "cm: data.REDIS_PASSWORD has a secret-looking name and a literal value"]


def test_cloud_run_and_allowed_names() -> None:
    service = res("gcp:cloudrunv2/service:Service", {"template": {"containers": [{
        "name": "api", "image": "app:1", "envs": [{"name": "SESSION_TOKEN_TTL", "value": "3600"},
                                                   {"name": "WEBHOOK_SECRET", "value": "s3cr3t-value"}]}]}}, name="run")
    assert messages("no-plaintext-secrets", service) == [
        "run: container 'api' env WEBHOOK_SECRET has a secret-looking name and a literal value"]
    assert messages("no-plaintext-secrets", service, config={"allowedNames": ["WEBHOOK_SECRET"]}) == []


def test_database_password_must_be_managed_by_rds() -> None:
    cluster = "aws:rds/cluster:Cluster"
    assert messages("no-plaintext-secrets", res(cluster, {"manageMasterUserPassword": True})) == []
    assert messages("no-plaintext-secrets", res(cluster, {"masterPassword": SECRET}, name="db")) == [
        "db: masterPassword is set by the program, so it is kept in Pulumi state; set manageMasterUserPassword: "
        "true so RDS keeps it in Secrets Manager and rotates it"]


def test_kubernetes_env_expansion_is_a_reference() -> None:
    deployment = res("kubernetes:apps/v1:Deployment", {"spec": {"template": {"spec": {"containers": [{
        "name": "api", "env": [
            {"name": "AGENT_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "redis"}}},
            {"name": "AGENT_REDIS_URL", "value": "redis://:$(AGENT_REDIS_PASSWORD)@agent-redis:6379/0"},
            {"name": "DB_PASSWORD", "value": "$(AGENT_REDIS_PASSWORD)"},
            {"name": "AGENT_DATABASE_URL", "value": "postgresql://agent:hunter2@db:5432/agent"}]}]}}}}, name="k")
    assert messages("no-plaintext-secrets", deployment) == [
        "k: container 'api' env AGENT_DATABASE_URL holds a literal value that looks like a connection string with a "
        "password"]
