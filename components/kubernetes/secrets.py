"""`AppSecrets`: secret references turned into Kubernetes Secrets the pods read as files.

The app pods mount them with `secret_files_volume` at `SECRETS_MOUNT_PATH`, one read-only file per
variable (agent_app's settings read that directory); `env()` still gives `secretKeyRef` entries
for the cases a file cannot serve.

Three sources, chosen per secret by its `SecretRef`:

* `config`: a `pulumi config set --secret` value, copied into one Opaque Secret (encrypted in
  Pulumi state, never in a ConfigMap or a plain env value);
* `arn` / `gcp_secret`: read from AWS Secrets Manager / GCP Secret Manager by the
  external-secrets operator through an `ExternalSecret` (needs `external_secrets_store`);
* `kubernetes_secret`: an existing Secret, referenced as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import pulumi
import pulumi_kubernetes as k8s

from .._base import ChildFactory, ComponentArgs, Transform, resolve_args
from ..config import SecretRef
from ..errors import ConfigError
from ._common import metadata, str_transforms

SECRETS_MOUNT_PATH = "/var/run/secrets/agent-infra"
"""Where the app pods find their secrets, one file per variable (agent_app's `SECRETS_DIR`)."""
SECRET_FILE_MODE = 0o400
"""Owner-read only; the pod's `fsGroup` adds group read for the (non-root) container user."""

EXTERNAL_SECRETS_API = "external-secrets.io/v1"
"""external-secrets served API (v0.16+); v1beta1 is deprecated."""


class SecretKey(NamedTuple):
    """Where a secret value lives in the cluster: Secret name and key."""

    name: str
    key: str

    def env(self, variable: str) -> dict[str, Any]:
        """The container `env` entry reading this key."""
        return {"name": variable, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


def secret_files_volume(volume: str, files: Mapping[str, SecretKey]) -> dict[str, Any]:
    """A projected, read-only volume with one file per entry: file name -> (Secret, key).
    Keys of several Secrets land in one directory; mode 0400 (`SECRET_FILE_MODE`)."""
    sources: dict[str, list[dict[str, str]]] = {}
    for path, ref in sorted(files.items()):
        sources.setdefault(ref.name, []).append({"key": ref.key, "path": path})
    return {"name": volume, "projected": {"defaultMode": SECRET_FILE_MODE, "sources": [
        {"secret": {"name": secret, "items": items}} for secret, items in sources.items()]}}


class AppSecretsArgs(ComponentArgs):
    """Secret references by environment variable name. Cost: none in-cluster; the cloud secret
    managers bill per secret and per 10k reads (the operator reads once per `refresh_interval`)."""

    namespace: str | pulumi.Output[str]
    """Namespace to create the Secrets in."""
    secrets: dict[str, SecretRef]
    """Variable name -> reference (`AGENT_LLM_API_KEY: {config: llmApiKey}`)."""
    values: dict[str, pulumi.Output[str]] = {}
    """Variable name -> a value computed by the program from secret Outputs (a connection URL
    with its password); stored in the same Opaque Secret as the `config` references, as a secret."""
    external_secrets_store: str | None = None
    """Secret store of the external-secrets operator; required when any reference is `arn` or `gcp_secret`."""
    external_secrets_store_kind: Literal["ClusterSecretStore", "SecretStore"] = "ClusterSecretStore"
    """Kind of `external_secrets_store`."""
    refresh_interval: str = "1h"
    """How often the operator re-reads the cloud secret (rotation reaches pods on their next restart)."""
    labels: dict[str, str] = {}
    """Labels on the Secrets."""
    transforms: Mapping[Literal["external_secret", "secret"], Transform] = {}
    """Escape hatch per child role (`external_secret`, `secret`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""


def check_sources(secrets: Mapping[str, SecretRef], external_secrets_store: str | None,
                  path: str = "app.secrets") -> list[str]:
    """Problems with the references, checked before anything is built."""
    problems = []
    for variable, ref in secrets.items():
        if (ref.arn or ref.gcp_secret) and not external_secrets_store:
            source = "arn" if ref.arn else "gcp_secret"
            problems.append(f"{path}.{variable}: {source} references need the external-secrets operator; set "
                            "kubernetes.external_secrets_store to its ClusterSecretStore, or use {config: KEY} "
                            "or {kubernetes_secret: NAME/KEY}")
        if ref.config and pulumi.Config().get_secret(ref.config) is None:
            problems.append(f"{path}.{variable}: config key {ref.config!r} is not set; run "
                            f"`pulumi config set --secret {ref.config} <value>`")
    return problems


class AppSecrets(pulumi.ComponentResource):
    """Secrets for the app; `keys[VAR]` says where each one lives, `env()` makes the env entries."""

    keys: dict[str, SecretKey]
    """Variable name -> (Secret name, key), for `secretKeyRef`."""

    def __init__(self, name: str, args: AppSecretsArgs | Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(AppSecretsArgs, args, "secrets")
        problems = check_sources(args.secrets, args.external_secrets_store)
        if problems:
            raise ConfigError(problems)
        super().__init__("agent-infra:kubernetes:AppSecrets", name, None, opts)
        child = ChildFactory(self, str_transforms(args.transforms))
        self.keys = {}
        from_config = {var: ref for var, ref in sorted(args.secrets.items()) if ref.config}
        remote = {var: ref for var, ref in sorted(args.secrets.items()) if ref.arn or ref.gcp_secret}
        self.secret = self.external_secret = None
        if from_config or args.values:
            values: dict[str, pulumi.Output[str]] = {
                var: pulumi.Config().require_secret(str(ref.config)) for var, ref in from_config.items()}
            values |= {var: pulumi.Output.from_input(value).apply(pulumi.Output.secret)
                       for var, value in sorted(args.values.items())}
            self.secret = child("secret", k8s.core.v1.Secret, name, metadata=metadata(name, args.namespace, args.labels),
                                type="Opaque", string_data=dict(sorted(values.items())))
            self.keys |= {var: SecretKey(name, var) for var in values}
        if remote:
            target = f"{name}-external"
            data = []
            for var, ref in remote.items():
                if ref.arn:
                    data.append({"secretKey": var, "remoteRef": {"key": ref.arn}})
                else:
                    secret_id = str(ref.gcp_secret).rstrip("/").rsplit("/", 1)[-1]
                    data.append({"secretKey": var, "remoteRef": {"key": secret_id, "version": "latest"}})
            self.external_secret = child(
                "external_secret", k8s.apiextensions.CustomResource, target,
                api_version=EXTERNAL_SECRETS_API, kind="ExternalSecret",
                metadata=metadata(target, args.namespace, args.labels),
                spec={"refreshInterval": args.refresh_interval,
                      "secretStoreRef": {"name": args.external_secrets_store, "kind": args.external_secrets_store_kind},
                      "target": {"name": target, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                      "data": data})
            self.keys |= {var: SecretKey(target, var) for var in remote}
        for var, ref in args.secrets.items():
            if ref.kubernetes_secret:
                secret_name, _, key = ref.kubernetes_secret.partition("/")
                self.keys[var] = SecretKey(secret_name, key)
        self.register_outputs({"keys": {var: f"{k.name}/{k.key}" for var, k in sorted(self.keys.items())}})

    def volume(self, volume: str, variables: list[str] | None = None) -> dict[str, Any]:
        """`secret_files_volume` for `variables` (default every secret), each file named like its variable."""
        chosen = sorted(self.keys) if variables is None else variables
        return secret_files_volume(volume, {var: self.keys[var] for var in chosen})

    def env(self, variables: list[str] | None = None) -> list[dict[str, Any]]:
        """`env` entries (secretKeyRef) for `variables`, default every secret, sorted by name."""
        chosen = sorted(self.keys) if variables is None else variables
        return [self.keys[var].env(var) for var in chosen]
