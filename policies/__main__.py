"""The CrossGuard entry point: the Pulumi CLI runs `python -m pulumi.policy <engine> <this dir>`.

Only constructs the pack (which serves gRPC and blocks); the policies live in `policies.rules`.
"""

import sys
from pathlib import Path

# The CLI runs this file with the pack folder as working directory; import `policies` from the
# folder that holds it (site-packages, or a checkout's root), never via the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies import PACK_NAME
from policies.engine import to_pulumi_policy
from policies.rules import ALL_RULES

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[to_pulumi_policy(rule) for rule in ALL_RULES],
    description="Deployment checklist and cloud security baseline for AI-agent stacks (AWS, GCP, Kubernetes).",
)
