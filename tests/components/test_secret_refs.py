import pytest
from agent_infra.components.config import load_deployment
from agent_infra.components.errors import ConfigError
from agent_infra.components.secret_refs import resolve_secret_refs

from agent_infra.offline import synthesize
from tests.conftest import deployment


def resolve(secrets, existing, platform, config=None):
    result = {}
    cfg = load_deployment(deployment(app={"secrets": secrets}))
    synthesize(lambda: result.update(zip(("values", "found"), resolve_secret_refs(cfg, existing, platform), strict=True)),
               config=config or {}, secret_keys=list(config or {}))
    return result


def test_config_refs_become_secret_values_and_native_refs_pass_through():
    result = resolve({"AGENT_API_KEYS": {"config": "apiKeys"},
                      "AGENT_LLM_API_KEY": {"arn": "arn:aws:secretsmanager:us-east-1:1:secret:llm"}},
                     "arn", "AWS", config={"agent-infra:apiKeys": "k1"})
    assert set(result["values"]) == {"AGENT_API_KEYS"}
    assert result["found"] == {"AGENT_LLM_API_KEY": "arn:aws:secretsmanager:us-east-1:1:secret:llm"}


def test_missing_config_secret_names_the_command():
    with pytest.raises(ConfigError, match=r"deployment.app.secrets.AGENT_API_KEYS: config key agent-infra:apiKeys "
                                          r"\(the project's namespace\) is not set; run `pulumi config set --secret apiKeys <value>`"):
        resolve({"AGENT_API_KEYS": {"config": "apiKeys"}}, "arn", "AWS")


def test_another_platforms_reference_is_refused_with_the_forms_that_work():
    with pytest.raises(ConfigError) as error:
        resolve({"AGENT_API_KEYS": {"gcp_secret": "projects/p/secrets/k"}}, "arn", "AWS")
    assert error.value.problems == ["deployment.app.secrets.AGENT_API_KEYS: on AWS use {config: KEY} or "
                                    "{arn: arn:aws:secretsmanager:...}, not gcp_secret"]
