"""What an app that calls a Bedrock model needs from IAM: the foundation model and the system
inference profile of the stack's geography (`us.`, `eu.`, `apac.` ...), exact ARNs only."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .iam import Grant

GEOGRAPHY_PREFIXES = ("us-gov", "us", "eu", "apac", "ca", "jp", "au", "global")
"""Prefixes of Bedrock's system-defined (cross-region) inference profile ids, e.g.
`us.anthropic.claude-3-5-haiku-20241022-v1:0` (Bedrock user guide, "Supported Regions and models
for inference profiles")."""


def geography(region: str) -> str:
    """The inference-profile prefix of a region: us-east-1 -> `us`, eu-west-1 -> `eu`, ap-* -> `apac`."""
    if region.startswith("us-gov-"):
        return "us-gov"
    head = region.split("-", 1)[0]
    return {"us": "us", "eu": "eu", "ap": "apac", "ca": "ca"}.get(head, head)


def split_model_id(model_id: str) -> tuple[str | None, str]:
    """`us.anthropic.x` -> ("us", "anthropic.x"); a bare foundation-model id -> (None, id)."""
    head, _, rest = model_id.partition(".")
    if head in GEOGRAPHY_PREFIXES and rest:
        return head, rest
    return None, model_id


def invoke_model_grant(model_id: str, region: str) -> Grant:
    """InvokeModel(+stream) on the foundation model in every region a cross-region profile may route
    to, and on the geography's system inference profile in this account and region. The app may
    then call with the bare id (on-demand) or the profile id (`AGENT_LLM_MODEL: us.<id>`)."""
    prefix, base = split_model_id(model_id)
    profile = f"{prefix or geography(region)}.{base}"
    account = aws.get_caller_identity_output().account_id
    return Grant(("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"), (
        f"arn:aws:bedrock:*::foundation-model/{base}",
        pulumi.Output.concat(f"arn:aws:bedrock:{region}:", account, f":inference-profile/{profile}")), "InvokeModel")
