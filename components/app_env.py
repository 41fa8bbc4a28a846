"""The contract with agent_app: the environment variables a deployment hands the app.

`agent_app/settings.py` reads exactly these names; `tests/components/test_app_env.py` holds the
two sides together. Secrets never appear here as values: each cloud passes a reference (an ARN
in `<NAME>_SECRET_ARN`, an ECS/Kubernetes secret injection) through its own mechanism.
"""

from __future__ import annotations

from typing import Any

import pulumi

from .config import DeploymentConfig

EnvValue = str | pulumi.Output[str]

WORKER_HEALTH_PORT = 8001
"""Where `agent-app worker` serves GET /healthz (claim loop alive, also while draining) and /readyz
(queue answers, not draining) when `AGENT_WORKER_HEALTH_PORT` is set: agent_app's
`DEFAULT_WORKER_HEALTH_PORT` (tests/components/test_app_env.py holds the two equal)."""
WORKER_HEALTH_PATH = "/healthz"
WORKER_READY_PATH = "/readyz"


def http_health_check(port: int, path: str = WORKER_HEALTH_PATH, timeout_seconds: int = 4) -> str:
    """A `CMD-SHELL` health check of an HTTP endpoint inside the container (ECS, Docker): the
    agent_app image has python but no curl. Exit 1 unless it answers 2xx/3xx in time."""
    return (f"python -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}{path}', "
            f"timeout={timeout_seconds})\" || exit 1")


QUEUE_STREAM = "agent:tasks"
"""Redis stream of tasks: AGENT_QUEUE_STREAM and the KEDA trigger's `stream` (agent_app's default)."""
QUEUE_GROUP = "agent-workers"
"""Consumer group: AGENT_QUEUE_GROUP and the KEDA trigger's `consumerGroup` (agent_app's default)."""


def environment_name(config: DeploymentConfig) -> str:
    """AGENT_ENVIRONMENT: the app knows dev, staging and prod; any other non-production name is
    treated as staging so placeholder secrets are refused there too."""
    if config.is_production:
        return "prod"
    return "dev" if config.environment == "dev" else "staging"


def app_environment(config: DeploymentConfig, **endpoints: Any) -> dict[str, Any]:
    """Plain (non-secret) settings for the app, plus endpoint values given as keyword args.

    `endpoints` keys are env names without the `AGENT_` prefix in lower case
    (`queue_url=queue.url` -> `AGENT_QUEUE_URL`); None values are dropped.
    """
    env: dict[str, Any] = {
        "AGENT_ENVIRONMENT": environment_name(config),
        "AGENT_LLM_PROVIDER": config.app.llm_provider,
        "AGENT_LLM_MODEL": config.app.llm_model,
        "AGENT_RUN_TIMEOUT_SECONDS": str(config.timeouts.run_seconds),
        "AGENT_STATE_TTL_SECONDS": str(config.state.ttl_seconds),
        "AGENT_RATE_LIMIT_PER_MINUTE": str(config.rate_limits.per_key_per_minute),
    }
    if config.app.llm_base_url:
        env["AGENT_LLM_BASE_URL"] = config.app.llm_base_url
    for key, value in endpoints.items():
        if value is not None:
            env[f"AGENT_{key.upper()}"] = value
    env.update(config.app.environment)
    return env
