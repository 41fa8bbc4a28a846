"""`Secrets`: Secret Manager secrets for values read from Pulumi config secrets, existing secrets
referenced as they are, and `roles/secretmanager.secretAccessor` granted per secret to exactly the
service accounts that read it (never project-wide)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"


def _slug(env: str) -> str:
    return env.lower().replace("_", "-")


class SecretsArgs(ComponentArgs):
    """Secret Manager secrets the app reads by reference. Cost: $0.06 per active secret version
    per month plus $0.03 per 10,000 accesses."""

    values: Mapping[str, str | pulumi.Output[str]] = {}
    """Environment variable name -> value to store (pass secret Outputs such as
    `pulumi.Config().require_secret(key)`). Each becomes one secret (`<project>-<stack>-<name>-<env>`)
    with one version; the value lives in Secret Manager and, encrypted, in Pulumi state."""
    existing: Mapping[str, str] = {}
    """Environment variable name -> existing secret (`projects/P/secrets/NAME`). Referenced, never
    read; the accessor grant is still added on that secret."""
    accessors: Mapping[str, str | pulumi.Output[str]] = {}
    """Who may read every secret here: a short label (`api`, `worker`; part of the binding's name)
    -> IAM member (`serviceAccount:...`). Granted on each secret, never on the project."""
    labels: dict[str, str] = {}
    """Labels on every secret (already GCP-safe; see `agent_infra.components.gcp.labels`)."""
    transforms: Mapping[Literal["accessor", "secret", "version"], Transform] = {}
    """Escape hatch per child role (`accessor`, `secret`, `version`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


class Secrets(pulumi.ComponentResource):
    """Secrets for the app, each with its own accessor bindings."""

    refs: dict[str, pulumi.Output[str]]
    """Environment variable name -> secret id for Cloud Run's `value_source.secret_key_ref.secret`."""

    def __init__(self, name: str, args: SecretsArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(SecretsArgs, args, name)
        super().__init__("agent-infra:gcp:Secrets", name, None, opts)
        child = ChildFactory(self, args.transforms)
        self.secrets: dict[str, gcp.secretmanager.Secret] = {}
        self.refs = {}
        for env, value in sorted(args.values.items()):
            role = f"{name}-{_slug(env)}"
            secret = child("secret", gcp.secretmanager.Secret, role, secret_id=physical_name(role, 255),
                           replication={"auto": {}}, labels=dict(args.labels))
            child("version", gcp.secretmanager.SecretVersion, role, secret=secret.id,
                  secret_data=pulumi.Output.secret(value))
            self.secrets[env] = secret
            self.refs[env] = secret.secret_id
            self._grant(child, role, secret.id, args.accessors)
        for env, secret_path in sorted(args.existing.items()):
            self.refs[env] = pulumi.Output.from_input(secret_path)
            self._grant(child, f"{name}-{_slug(env)}", secret_path, args.accessors)
        self.register_outputs({"refs": self.refs})

    @staticmethod
    def _grant(child: ChildFactory, role: str, secret_id: str | pulumi.Output[str],
               accessors: Mapping[str, str | pulumi.Output[str]]) -> None:
        for label, member in sorted(accessors.items()):
            child("accessor", gcp.secretmanager.SecretIamMember, f"{role}-{label}-access", secret_id=secret_id,
                  role=ACCESSOR_ROLE, member=member)
