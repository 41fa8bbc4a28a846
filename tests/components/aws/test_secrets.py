"""Secrets block on the offline plan: each value becomes a Secrets Manager secret under the rotating KMS
key, stored as a Pulumi secret; readers are granted exactly those ARNs and the key; the age rule notifies."""

from __future__ import annotations

import json

import pulumi
import pytest
from agent_infra.components.aws import Secrets
from agent_infra.components.errors import ConfigError

from agent_infra.offline import Plan, synthesize

SECRET = "aws:secretsmanager/secret:Secret"
EXISTING = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared/webhook-AbCdEf"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"
GRANTS: dict[str, list[object]] = {}


@pytest.fixture(scope="module")
def plan() -> Plan:
    def program() -> None:
        secrets = Secrets("app", {"values": {"AGENT_LLM_API_KEY": pulumi.Output.secret("sk-offline-value")},
                                  "existing_arns": {"AGENT_WEBHOOK_SECRET": EXISTING},
                                  "alarm_topic_arn": TOPIC, "max_age_days": 60})
        GRANTS["app"] = secrets.grant_read()
    return synthesize(program, stack="prod")


def test_value_becomes_a_kms_encrypted_secret(plan: Plan) -> None:
    key = plan.one("aws:kms/key:Key", "app")
    assert key.inputs["enableKeyRotation"] is True and key.inputs["rotationPeriodInDays"] == 365
    secret = plan.one(SECRET, "app-llm-api-key").inputs
    assert secret["kmsKeyId"] == key.outputs["arn"]
    assert (secret["name"], secret["recoveryWindowInDays"]) == ("agent-infra/prod/llm-api-key", 7)
    version = plan.one("aws:secretsmanager/secretVersion:SecretVersion", "app-llm-api-key-version")
    assert version.inputs["secretString"] == "[secret]" and version.secret_paths == ["secretString"]
    assert "sk-offline-value" not in json.dumps([r.inputs for r in plan])
    # An existing ARN is referenced, never copied.
    assert [r.name for r in plan.of_type(SECRET)] == ["app-llm-api-key"]


def test_arns_and_grants_cover_exactly_the_secrets_and_the_key(plan: Plan) -> None:
    component = plan.one("agent-infra:aws:Secrets", "app").outputs
    created = plan.one(SECRET, "app-llm-api-key").outputs["arn"]
    assert component["arns"] == {"AGENT_LLM_API_KEY": created, "AGENT_WEBHOOK_SECRET": EXISTING}
    read, decrypt = GRANTS["app"]
    assert read.actions == ("secretsmanager:GetSecretValue",)  # type: ignore[attr-defined]
    assert decrypt.actions == ("kms:Decrypt",)  # type: ignore[attr-defined]


def test_age_rule_notifies_the_topic(plan: Plan) -> None:
    rule = plan.one("aws:cfg/rule:Rule", "app-age").inputs
    assert rule["source"] == {"owner": "AWS", "sourceIdentifier": "SECRETSMANAGER_SECRET_PERIODIC_ROTATION"}
    assert json.loads(rule["inputParameters"]) == {"maxDaysSinceRotation": "60"}
    event = json.loads(plan.one("aws:cloudwatch/eventRule:EventRule", "app-age-event").inputs["eventPattern"])
    assert event["detail"]["newEvaluationResult"] == {"complianceType": ["NON_COMPLIANT"]}
    assert plan.one("aws:cloudwatch/eventTarget:EventTarget", "app-age-target").inputs["arn"] == TOPIC


def test_a_name_in_both_values_and_arns_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"AGENT_X: set either values or existing_arns, not both"):
        Secrets("app", {"values": {"AGENT_X": "v"}, "existing_arns": {"AGENT_X": EXISTING}})


def test_a_key_is_created_only_to_encrypt_a_secret_created_here_and_has_an_explicit_policy() -> None:
    def program() -> None:
        Secrets("none", {})
        Secrets("byarn", {"existing_arns": {"AGENT_API_KEYS": "arn:aws:secretsmanager:us-east-1:1:secret:k-AbCdEf"}})
        Secrets("made", {"values": {"AGENT_API_KEYS": "k1"}})

    result = synthesize(program)
    keys = {k.name: k for k in result.of_type("aws:kms/key:Key")}
    assert set(keys) == {"made"}  # a key that encrypts nothing costs $1/month and protects nothing
    policy = json.loads(keys["made"].inputs["policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"AWS": "arn:aws:iam::123456789012:root"},
                                                         {"Service": "logs.us-east-1.amazonaws.com"},
                                                         {"Service": "logs.us-east-1.amazonaws.com"}]
