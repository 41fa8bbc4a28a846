"""The agent-infra Pulumi program: read the stack's `deployment`, validate it, build, export.

Config is validated before any resource is registered; a mistake stops the run with
`deployment.<path>: <problem>` lines and no traceback (ConfigError is a pulumi.RunError).
"""

import pulumi
from agent_infra.components.config import CONFIG_KEY, load_deployment
from agent_infra.components.topology import deploy

config = load_deployment(pulumi.Config().get_object(CONFIG_KEY))
agent = deploy("agent", config)
for key, value in agent.outputs.items():
    pulumi.export(key, value)
