"""The agent-infra Pulumi program: read the stack's `agent-infra:deployment`, validate it, build, export.

Config is validated before any resource is registered; a mistake stops the run with
`deployment.<path>: <problem>` lines and no traceback (ConfigError is a pulumi.RunError).
The Pulumi CLI runs this file with the working directory set to this folder (`main: stacks/`).
"""

import pulumi
from agent_infra.components import deploy
from agent_infra.components.config import load_stack_deployment

agent = deploy("agent", load_stack_deployment())
for key, value in agent.outputs.items():
    pulumi.export(key, value)
