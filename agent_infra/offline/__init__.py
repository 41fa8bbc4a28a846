"""The offline engine: run a Pulumi program, or a callable, under Pulumi's mocks exactly as the
Pulumi CLI would run it, and return the plan (every resource, its inputs and outputs).

    from agent_infra.offline import synthesize
    from agent_infra.components.aws import Queue

    plan = synthesize(lambda: Queue("jobs"))
    assert plan.one("aws:sqs/queue:Queue", "jobs").inputs["sqsManagedSseEnabled"] is True

`plan` holds the plan model and its queries, `mocks` the recording engine and provider mocks,
`runner` the CLI-faithful runs (`run_project`, `synthesize`).
"""

from .plan import SECRET_MASK, UNKNOWN_MARK, Plan, PlannedResource
from .runner import (
           _SPEEDUPS,
           PlanError,
           ProgramLaunch,
           program_launch,
           read_project,
           run_project,
           stack_config,
           synthesize,
)

__all__ = ["SECRET_MASK", "UNKNOWN_MARK", "Plan", "PlanError", "PlannedResource", "ProgramLaunch", "program_launch",
           "read_project", "run_project", "stack_config", "synthesize"]
