"""Secrets are references to a secret manager, never literal values in an environment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..engine import SECRET, Context, Resource, Rule, is_unknown
from ._common import (
    CLOUD_RUN_JOB,
    CLOUD_RUN_SERVICE,
    CONTAINER_TYPES,
    ECS_TASK,
    K8S_CONFIGMAP,
    K8S_WORKLOADS,
    LAMBDA,
    RDS_CLUSTER,
    RDS_INSTANCE,
    as_dict,
    as_list,
    containers,
    resource_rule,
)

RULES: list[Rule] = []

SECRET_NAME = re.compile(r"(?i)(secret|passw(or)?d|passwd|token|api[_-]?key|private[_-]?key|credential|auth[_-]?key)")
REFERENCE_NAME = re.compile(r"(?i)(_ARN|_SECRET_ID|_SECRET_NAME|_REF|_FILE|_PATH|_ENDPOINT|_URL)$")
REFERENCE_VALUE = re.compile(
    r"^(arn:aws[a-z-]*:(secretsmanager|ssm|kms):|projects/[^/]+/secrets/|\{\{resolve:|sm://|vault:|/run/secrets/)")
KEY_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("an OpenAI API key", re.compile(r"\bsk-(proj-|svcacct-)?[A-Za-z0-9_-]{20,}")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Stripe secret key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("a connection string with a password", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:(?!\$[({])[^/\s@]+@")),
)
_PLAIN_SETTING = re.compile(r"^(-?\d+(\.\d+)?|true|false|yes|no|on|off|none|null|)$", re.IGNORECASE)
# Kubernetes expands `$(OTHER_VAR)` from the container's own env (e.g. a secretKeyRef): a reference.
_ENV_REFERENCE = re.compile(r"^\$[({][A-Za-z_][A-Za-z0-9_]*[)}]$")


LITERAL = object()
"""Marks a database master password that the program sets itself."""
LITERAL_CREDENTIALS = {RDS_CLUSTER: "masterPassword", RDS_INSTANCE: "password"}


def secret_problem(name: str, value: Any, allowed: list[str]) -> str | None:
    """Why `name=value` is a hard-coded secret, or None."""
    if value is LITERAL:
        return "is set by the program, so it is kept in Pulumi state; set manageMasterUserPassword: true so RDS " \
               "keeps it in Secrets Manager and rotates it"
    if name in allowed or value is None or is_unknown(value):
        return None
    if value == SECRET:
        return "is set from a Pulumi secret, so the value is stored in plain text in the resource's configuration"
    if not isinstance(value, str):
        return None
    for label, pattern in KEY_FORMATS:
        if pattern.search(value):
            return f"holds a literal value that looks like {label}"
    if (SECRET_NAME.search(name) and not REFERENCE_NAME.search(name) and not REFERENCE_VALUE.match(value)
            and not _PLAIN_SETTING.match(value.strip()) and not _ENV_REFERENCE.match(value.strip())):
        return "has a secret-looking name and a literal value"
    return None


def environment(resource: Resource) -> Iterator[tuple[str, Any]]:
    """(where, value) for every literal environment entry (references are not literals)."""
    if resource.type == LAMBDA:
        env = resource.get("environment")
        variables = env if env == SECRET else as_dict(env).get("variables")
        if variables == SECRET:
            yield "environment", SECRET
        for key, value in as_dict(variables).items():
            yield key, value
    elif resource.type in LITERAL_CREDENTIALS:
        # The AWS SDK wraps these in a secret whatever their source, so any value set here was
        # chosen by the program and lives in Pulumi state; RDS can keep it in Secrets Manager instead.
        key = LITERAL_CREDENTIALS[resource.type]
        if resource.get(key) is not None and resource.get("manageMasterUserPassword") is not True:
            yield key, LITERAL
    elif resource.type == K8S_CONFIGMAP:
        for key, value in as_dict(resource.get("data")).items():
            yield f"data.{key}", value
    else:
        for container in containers(resource):
            prefix = f"{container.label} env " if resource.type != "docker:index/container:Container" else "env "
            if container.platform == "docker":
                for entry in as_list(container.get("envs")):
                    if isinstance(entry, str) and "=" in entry:
                        key, _, value = entry.partition("=")
                        yield prefix + key, value
                continue
            entries = container.get("envs" if container.platform == "cloudrun" else "environment"
                                    if container.platform == "ecs" else "env")
            for entry in as_list(entries):
                if isinstance(entry, dict) and "value" in entry:
                    yield prefix + str(entry.get("name")), entry.get("value")


@resource_rule(
    RULES, name="no-plaintext-secrets", area="secrets", level="mandatory", severity="critical",
    types=CONTAINER_TYPES | {LAMBDA, K8S_CONFIGMAP} | set(LITERAL_CREDENTIALS),
    description="Checks whether function, task, service and container environments, ConfigMaps and database "
                "credentials are free of hard-coded secrets.",
    remediation="Store the value in the cloud's secret manager and pass a reference: agent-infra "
                "`app.secrets: {NAME: {config: key}}`; ECS `secrets[].valueFrom`, Kubernetes "
                "`valueFrom.secretKeyRef`, Cloud Run `valueSource.secretKeyRef`, Lambda the secret's ARN "
                "read at start-up. Rotate any key that was committed.",
    fixes={LAMBDA: "Keep the value in Secrets Manager (agent-infra: app.secrets) and pass only its ARN "
                   "(NAME_SECRET_ARN); the function reads it at start-up. Rotate any key that was committed.",
           ECS_TASK: "Move the variable from environment to the container's secrets [{name, valueFrom: <Secrets "
                     "Manager ARN>}]. Rotate any key that was committed.",
           K8S_CONFIGMAP: "Move the key to a Secret (or an ExternalSecret) and reference it with "
                          "valueFrom.secretKeyRef. Rotate any key that was committed.",
           **dict.fromkeys(K8S_WORKLOADS, "Use valueFrom.secretKeyRef (a Secret or ExternalSecret); build URLs with "
                           "$(VAR) expansion of the secret variable. Rotate any key that was committed."),
           CLOUD_RUN_SERVICE: "Use envs[].valueSource.secretKeyRef {secret, version} from Secret Manager.",
           CLOUD_RUN_JOB: "Use envs[].valueSource.secretKeyRef {secret, version} from Secret Manager.",
           **dict.fromkeys(LITERAL_CREDENTIALS, "Set manageMasterUserPassword: true and drop the password "
                           "argument; the app reads the RDS-managed secret by ARN.")},
    config={"allowedNames": {"type": "array", "items": {"type": "string"}, "default": [],
                             "description": "Variable names that are known not to be secrets."}},
)
def no_plaintext_secrets(resource: Resource, ctx: Context) -> Iterator[str]:
    for where, value in environment(resource):
        problem = secret_problem(where.rsplit(" ", 1)[-1].rsplit(".", 1)[-1], value, ctx["allowedNames"])
        if problem:
            yield f"{where} {problem}"
