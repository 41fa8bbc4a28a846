"""The AWS region a topology deploys to: `regions.primary` and the provider's `aws:region` agree.

The Pulumi AWS provider takes its region from `aws:region` (or AWS_REGION in the environment);
`deployment.regions.primary` names the same thing in our config. Both set and different is an
error naming both; only `aws:region` set: that is the primary region; only `regions.primary` set:
an explicit provider for that region, so the plan (and `pulumi up`) uses the region the config
names rather than whatever the environment says.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from ..config import DeploymentConfig
from ..errors import ConfigError


def primary_region(name: str, config: DeploymentConfig,
                   opts: pulumi.ResourceOptions | None) -> tuple[DeploymentConfig, pulumi.ResourceOptions | None]:
    """`config` with `regions.primary` settled, and `opts` carrying a provider for it when needed."""
    if opts is not None and (opts.provider is not None or opts.providers):
        return config, opts  # the caller chose the provider (and so the region)
    configured = pulumi.Config("aws").get("region")
    explicit = "primary" in config.regions.model_fields_set
    if configured and explicit and configured != config.regions.primary:
        raise ConfigError(f"deployment.regions.primary: {config.regions.primary} but aws:region is {configured}; "
                          f"set one region for both: `pulumi config set aws:region {config.regions.primary}` "
                          f"or set regions.primary to {configured} (or remove it to follow aws:region)")
    if configured:
        regions = config.regions.model_copy(update={"primary": configured})
        return config.model_copy(update={"regions": regions}), opts
    provider = aws.Provider(f"{name}-{config.regions.primary}", region=config.regions.primary,
                            opts=pulumi.ResourceOptions(parent=opts.parent if opts else None))
    return config, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers={"aws": provider}))
