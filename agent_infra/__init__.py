"""agent-infra: Pulumi components, policy pack and agent service for AI-agent deployments.

One import root for the whole distribution, so it never collides with a project's own packages
(a user's program may well have a `components/` folder of its own):

    from agent_infra.components import HybridAgent          # the library (repository folder components/)
    from agent_infra.offline import synthesize, run_project  # the offline engine (plans under Pulumi's mocks)
    agent_infra.policies                                      # the policy pack (repository folder policies/)
    agent_infra.agent_app                                     # the agent service (repository folder agent_app/)

Importing this package imports nothing else: a Lambda bundle or the app image pays nothing for it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agent-infra")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
