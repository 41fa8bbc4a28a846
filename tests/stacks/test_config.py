"""Stack config validation: each bad config stops with one message naming the key."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.config import (
    CLOUDWATCH_RETENTION_DAYS,
    DeploymentConfig,
    load_deployment,
    stack_file_schema,
)
from agent_infra.components.errors import ConfigError
from agent_infra.components.regions import AWS_REGIONS, GCP_REGIONS
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import deployment


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_deployment(raw)
    return error.value.problems


def test_minimal_config_gets_secure_cheap_defaults():
    config = load_deployment({"cloud": "aws", "topology": "serverless"})
    assert config.environment == "dev" and not config.is_production
    assert config.queue.max_receive_count == 3
    assert config.visibility_timeout_seconds == 6 * config.timeouts.run_seconds
    assert config.state_backend == "dynamodb"
    assert config.database_enabled is False
    assert config.app.llm_provider == "offline" and config.app.architecture == "arm64"
    assert config.observability.log_retention_days in CLOUDWATCH_RETENTION_DAYS


def test_json_text_is_accepted_as_the_cli_passes_it():
    assert load_deployment(json.dumps({"cloud": "gcp", "topology": "container", "regions": {"primary": "europe-west1"},
                                       "gcp": {"project": "my-project-1"}})).cloud == "gcp"


def test_production_switches_follow_environment():
    prod = load_deployment(deployment(environment="prod", topology="hybrid"))
    assert prod.is_production and prod.deletion_protection and prod.database_enabled
    assert load_deployment(deployment(environment="prod", production=False)).is_production is False


@pytest.mark.parametrize(("raw", "expected"), [
    (None, "deployment: missing; add `agent-infra:deployment:`"),
    ([1, 2], "deployment: must be a mapping"),
    ("{not json", "deployment: not valid JSON"),
    ({"topology": "serverless"}, "deployment.cloud: required key is missing"),
    (deployment(cloud="azure"), "deployment.cloud: Input should be 'aws', 'gcp', 'kubernetes' or 'docker', got 'azure'"),
    (deployment(cloud="kubernetes"), "deployment.topology: serverless is not available on kubernetes; use topology: container"),
    (deployment(cloud="docker"), "deployment.topology: serverless is not available on docker"),
    (deployment(budget={"monthly_limit_usd": -5}), "deployment.budget.monthly_limit_usd: Input should be greater than 0, got -5"),
    (deployment(budget={"monthly_limit_usd": 0}), "deployment.budget.monthly_limit_usd: Input should be greater than 0, got 0"),
    (deployment(regions={"primary": "us-east-9"}), "deployment.regions.primary: unknown aws region 'us-east-9'; did you mean"),
    (deployment(regions={"primary": "us-east-1", "disaster_recovery": ["eu-west-1", "mars-1"]}),
     "deployment.regions.disaster_recovery[1]: unknown aws region 'mars-1'"),
    (deployment(regions={"primary": "us-east-1", "disaster_recovery": ["us-east-1"]}),
     "deployment.regions.disaster_recovery: must differ from the primary region"),
    (deployment(cloud="gcp", topology="container"), "deployment.gcp.project: required when cloud is gcp"),
    (deployment(gcp={"project": "my-project-1"}), "deployment.gcp: gcp options are set but cloud is aws"),
    (deployment(app={"secrets": {"AGENT_LLM_API_KEY": "sk-live-123"}}),
     "deployment.app.secrets: AGENT_LLM_API_KEY must be a reference such as {config: llmApiKey}, never a value"),
    (deployment(app={"secrets": {"AGENT_LLM_API_KEY": {"config": "a", "arn": "arn:aws:secretsmanager:x"}}}),
     "deployment.app.secrets.AGENT_LLM_API_KEY: set exactly one of config, arn, gcp_secret, kubernetes_secret (got config, arn)"),
    (deployment(app={"environment": {"DB_PASSWORD": "hunter2"}}),
     "deployment.app.environment: DB_PASSWORD looks like a secret; move it to app.secrets as a reference"),
    (deployment(app={"image": "ghcr.io/acme/agent:latest"}), "deployment.app.image: image must be pinned"),
    (deployment(app={"llm_provider": "openai"}), "deployment.app.secrets.AGENT_LLM_API_KEY: required for llm_provider openai"),
    (deployment(app={"memory_mb": 64}), "deployment.app.memory_mb: Input should be greater than or equal to 128, got 64"),
    (deployment(scaling={"min_instances": 5, "max_instances": 2}), "deployment.scaling: min_instances (5) must not exceed max_instances (2)"),
    (deployment(scaling={"schedules": [{"name": "rush", "cron": "every morning", "min_instances": 2}]}),
     "deployment.scaling.schedules[0].cron: must be a five-field cron expression"),
    (deployment(timeouts={"run_seconds": 1200}), "deployment.timeouts.run_seconds: Lambda runs at most 900 s, got 1200"),
    (deployment(queue={"visibility_timeout_seconds": 60}, timeouts={"run_seconds": 300}),
     "deployment.queue.visibility_timeout_seconds: must be at least timeouts.run_seconds (300), got 60"),
    (deployment(observability={"log_retention_days": 10}), "deployment.observability.log_retention_days: must be one of 1, 3, 5"),
    (deployment(vectors={"backend": "vertex"}), "deployment.vectors.backend: vertex is available on gcp, not aws; use pgvector"),
    (deployment(tags={"aws:owner": "me"}), "deployment.tags: tag key 'aws:owner' uses the reserved aws: prefix"),
    (deployment(budgett={"monthly_limit_usd": 5}), "deployment.budgett: unknown key; check the spelling"),
    (deployment(budget={"emails": ["not-an-email"]}), "deployment.budget.emails: 'not-an-email' is not an email address"),
    (deployment(environment="Prod!"), "deployment.environment: String should match pattern"),
])
def test_bad_config_names_key_and_problem(raw, expected):
    lines = problems(raw)
    assert any(line.startswith(expected) for line in lines), lines


def test_every_problem_is_reported_not_just_the_first():
    lines = problems(deployment(budget={"monthly_limit_usd": -1}, app={"memory_mb": 1}, foo=1))
    assert [line.split(":")[0] for line in lines] == [
        "deployment.app.memory_mb", "deployment.budget.monthly_limit_usd", "deployment.foo"]


def test_secret_values_are_never_echoed():
    lines = problems(deployment(app={"secrets": {"AGENT_LLM_API_KEY": "sk-live-do-not-print"}}))
    assert "sk-live-do-not-print" not in "\n".join(lines)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(AWS_REGIONS)), st.integers(1, 900), st.integers(0, 20), st.integers(1, 50))
def test_any_valid_aws_serverless_config_loads(region, run_seconds, min_instances, extra):
    config = load_deployment(deployment(regions={"primary": region}, timeouts={"run_seconds": run_seconds},
                                        scaling={"min_instances": min_instances, "max_instances": min_instances + extra}))
    assert config.visibility_timeout_seconds >= run_seconds
    assert 30 <= config.visibility_timeout_seconds <= 43_200


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=3, max_size=16))
def test_unknown_regions_are_refused_with_the_key(region):
    if region in AWS_REGIONS:
        return
    lines = problems(deployment(regions={"primary": region}))
    assert lines[0].startswith(f"deployment.regions.primary: unknown aws region {region!r}")


@settings(max_examples=40, deadline=None)
@given(st.floats(max_value=0, allow_nan=False, allow_infinity=False))
def test_non_positive_budgets_are_refused(limit):
    assert problems(deployment(budget={"monthly_limit_usd": limit}))[0].startswith("deployment.budget.monthly_limit_usd:")


def test_gcp_regions_checked_for_gcp():
    assert load_deployment({"cloud": "gcp", "topology": "serverless", "regions": {"primary": sorted(GCP_REGIONS)[0]},
                            "gcp": {"project": "my-project-1"}}).state_backend == "firestore"
    assert problems({"cloud": "gcp", "topology": "serverless", "regions": {"primary": "us-east-1"},
                     "gcp": {"project": "my-project-1"}})[0].startswith("deployment.regions.primary: unknown gcp region")


def test_schema_covers_the_stack_file_and_documents_fields():
    schema = stack_file_schema()
    deployment_schema = schema["$defs"]["DeploymentConfig"]
    assert schema["properties"]["config"]["properties"]["agent-infra:deployment"] == {"$ref": "#/$defs/DeploymentConfig"}
    assert set(deployment_schema["required"]) == {"cloud", "topology"}
    budget = schema["$defs"]["BudgetConfig"]["properties"]["monthly_limit_usd"]
    assert budget["exclusiveMinimum"] == 0 and "positive" in budget["description"]
    assert DeploymentConfig.model_json_schema()["additionalProperties"] is False
