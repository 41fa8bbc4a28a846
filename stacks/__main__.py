"""The agent-infra Pulumi program: read the stack's `agent-infra:deployment`, validate it, build, export.

Config is validated before any resource is registered; a mistake stops the run with
`deployment.<path>: <problem>` lines and no traceback (ConfigError is a pulumi.RunError).
The Pulumi CLI runs this file with the working directory set to this folder (`main: stacks/`).
"""

import pulumi
from agent_infra.components import ConfigError, deploy
from agent_infra.components.config import load_stack_deployment

try:
    agent = deploy("agent", load_stack_deployment())
except ConfigError as error:
    raise error.from_stack() from None  # every value here came from the stack file
for key, value in agent.outputs.items():
    pulumi.export(key, value)
