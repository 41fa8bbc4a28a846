"""agent-infra's policy pack: one source for the CrossGuard pack and the offline runner.

    pulumi preview --policy-pack "$(agent-infra policy path)"    # under the Pulumi CLI
    agent-infra policy --stack dev                               # offline, no credentials
"""

from __future__ import annotations

from pathlib import Path

PACK_NAME = "agent-infra"
PACK_DIR = Path(__file__).resolve().parent
"""The folder to pass to `pulumi preview --policy-pack`."""
