"""`app.secrets` references resolved the same way on every cloud.

A `{config: KEY}` reference is read from the stack's Pulumi config secrets (and later stored in
the cloud's secret manager by the topology); a reference to an existing secret of this cloud is
passed through; a reference meant for another platform is refused with the forms that work here.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi

from .config import DeploymentConfig
from .errors import ConfigError

ExistingKind = Literal["arn", "gcp_secret", "kubernetes_secret"]
_EXAMPLES = {"arn": "{arn: arn:aws:secretsmanager:...}", "gcp_secret": "{gcp_secret: projects/P/secrets/NAME}",
             "kubernetes_secret": "{kubernetes_secret: NAME/KEY}"}


def resolve_secret_refs(config: DeploymentConfig, existing: ExistingKind,
                        platform: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(env name -> Pulumi secret value from config, env name -> existing secret of `existing` kind)."""
    values: dict[str, Any] = {}
    found: dict[str, str] = {}
    project_config = pulumi.Config()
    for env, ref in config.app.secrets.items():
        if ref.config:
            value = project_config.get_secret(ref.config)
            if value is None:
                raise ConfigError(f"deployment.app.secrets.{env}: config key {pulumi.get_project()}:{ref.config} "
                                  "(the project's namespace) is not set; run "
                                  f"`pulumi config set --secret {ref.config} <value>`")
            values[env] = value
        elif getattr(ref, existing):
            found[env] = getattr(ref, existing)
        else:
            other = next(kind for kind in ("arn", "gcp_secret", "kubernetes_secret") if getattr(ref, kind))
            raise ConfigError(f"deployment.app.secrets.{env}: on {platform} use {{config: KEY}} or "
                              f"{_EXAMPLES[existing]}, not {other}")
    return values, found
