"""The CrossGuard entry point: the Pulumi CLI runs `python -m pulumi.policy <engine> <this dir>`.

Only constructs the pack (which serves gRPC and blocks); the policies live in `agent_infra.policies.rules`.
"""

# `python -m pulumi.policy` runs this file by path from the pack folder, so it is no package
# member: the pack is imported by its installed name (the interpreter has agent-infra installed).
from agent_infra.policies import PACK_NAME
from agent_infra.policies.engine import to_pulumi_policy
from agent_infra.policies.rules import ALL_RULES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[to_pulumi_policy(rule) for rule in ALL_RULES],
    description="Deployment checklist and cloud security baseline for AI-agent stacks (AWS, GCP, Kubernetes).",
)
