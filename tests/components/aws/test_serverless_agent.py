"""The AWS serverless topology's wiring, held on the offline plan of a real config."""

from __future__ import annotations

import json

import pytest
from agent_infra.components.config import load_deployment
from agent_infra.components.topology import ServerlessAgent

from agent_infra.offline import synthesize
from tests.conftest import deployment

LAMBDA = "aws:lambda/function:Function"


def build(**overrides):
    config = load_deployment(deployment(**overrides))
    return synthesize(lambda: ServerlessAgent("agent", config), stack="dev",
                      config={"agent-infra:apiKeys": "key-one,key-two"}, secret_keys=["agent-infra:apiKeys"])


@pytest.fixture(scope="module")
def dev():
    return build(timeouts={"run_seconds": 120}, scaling={"jobs_per_worker": 4, "worker_max_instances": 7},
                 rate_limits={"requests_per_second": 20, "burst": 40}, observability={"log_retention_days": 14},
                 budget={"monthly_limit_usd": 50, "emails": ["ops@example.com"]},
                 app={"secrets": {"AGENT_API_KEYS": {"config": "apiKeys"}}})


def statements(plan, role_policy_name):
    return json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", role_policy_name).inputs["policy"])["Statement"]


def test_functions_are_told_where_the_queue_and_table_are(dev):
    queue = dev.one("aws:sqs/queue:Queue", "agent-tasks").outputs
    table = dev.one("aws:dynamodb/table:Table", "agent-sessions").outputs
    for name in ("agent-api", "agent-worker"):
        env = dev.one(LAMBDA, name).inputs["environment"]["variables"]
        assert env["AGENT_QUEUE_BACKEND"] == "sqs" and env["AGENT_QUEUE_URL"] == queue["url"]
        assert env["AGENT_STATE_BACKEND"] == "dynamodb" and env["AGENT_STATE_TABLE"] == table["name"]
        assert env["AGENT_API_KEYS_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
        assert "AGENT_API_KEYS" not in env  # the value never reaches an env var


def test_role_policies_name_exact_arns_and_nothing_broader(dev):
    queue_arn = dev.one("aws:sqs/queue:Queue", "agent-tasks").outputs["arn"]
    table_arn = dev.one("aws:dynamodb/table:Table", "agent-sessions").outputs["arn"]
    for policy in dev.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert "*" not in resources, (policy.name, statement)
            assert not any(action.endswith(":*") or action == "*" for action in statement["Action"]), policy.name
    worker = {s["Sid"]: s for s in statements(dev, "agent-worker-policy")}
    assert worker["ConsumeTasks"]["Resource"] == [queue_arn]
    assert worker["ConsumeTasks"]["Action"] == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                                "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"]
    assert worker["AgentSessionsReadWrite"]["Resource"] == [table_arn]
    assert "SendTasks" not in worker
    api = {s["Sid"]: s for s in statements(dev, "agent-api-policy")}
    assert api["SendTasks"] == {"Sid": "SendTasks", "Effect": "Allow", "Resource": [queue_arn],
                                "Action": ["sqs:GetQueueAttributes", "sqs:SendMessage"]}
    assert "ConsumeTasks" not in api
    log_group = dev.one("aws:cloudwatch/logGroup:LogGroup", "agent-api-logs").outputs["arn"]
    assert api["WriteOwnLogs"]["Resource"] == [f"{log_group}:*"]


def test_queue_redrives_to_dlq_and_hides_tasks_six_times_the_run(dev):
    queue = dev.one("aws:sqs/queue:Queue", "agent-tasks")
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dev.one("aws:sqs/queue:Queue", "agent-tasks-dlq").outputs["arn"],
                       "maxReceiveCount": 3}
    assert queue.inputs["visibilityTimeoutSeconds"] == 6 * 120


def test_worker_reports_partial_batch_failures(dev):
    mapping = dev.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["eventSourceArn"] == dev.one("aws:sqs/queue:Queue", "agent-tasks").outputs["arn"]
    assert mapping.inputs["functionName"] == dev.one(LAMBDA, "agent-worker").outputs["arn"]
    assert mapping.inputs["batchSize"] == 4 and mapping.inputs["scalingConfig"] == {"maximumConcurrency": 7}


def test_session_table_has_ttl_pitr_and_encryption(dev):
    table = dev.one("aws:dynamodb/table:Table", "agent-sessions").inputs
    assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["deletionProtectionEnabled"] is False


def test_functions_have_timeouts_tracing_and_log_retention(dev):
    assert dev.one(LAMBDA, "agent-api").inputs["timeout"] == 29
    worker = dev.one(LAMBDA, "agent-worker").inputs
    assert worker["timeout"] == 120 and worker["tracingConfig"] == {"mode": "Active"}
    assert worker["architectures"] == ["arm64"] and worker["handler"] == "agent_app.lambda_handler.queue_handler"
    assert worker["loggingConfig"]["logGroup"] == dev.one("aws:cloudwatch/logGroup:LogGroup", "agent-worker-logs").inputs["name"]
    for group in dev.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs.get("retentionInDays") in (14, 365, 3653), group.name


def test_http_api_stage_is_throttled_and_logged(dev):
    stage = dev.one("aws:apigatewayv2/stage:Stage", "agent-http-stage").inputs
    assert stage["defaultRouteSettings"]["throttlingRateLimit"] == 20
    assert stage["defaultRouteSettings"]["throttlingBurstLimit"] == 40
    assert stage["accessLogSettings"]["destinationArn"] == dev.one(
        "aws:cloudwatch/logGroup:LogGroup", "agent-http-access-logs").outputs["arn"]
    integration = dev.one("aws:apigatewayv2/integration:Integration", "agent-http-integration").inputs
    assert integration["payloadFormatVersion"] == "2.0" and integration["timeoutMilliseconds"] == 29_000


def test_outputs_and_tags(dev):
    assert set(dev.outputs) == set()  # nothing exported: the program, not the component, exports
    topology = dev.one("agent-infra:topology:ServerlessAgent", "agent")
    assert topology.outputs["endpoint"].startswith("https://") and topology.outputs["queue_url"].startswith("https://sqs.")
    queue_tags = dev.one("aws:sqs/queue:Queue", "agent-tasks").inputs["tags"]
    assert queue_tags["stack"] == "dev" and queue_tags["environment"] == "dev" and queue_tags["managed-by"] == "pulumi"


def test_production_turns_on_deletion_protection():
    prod = build(environment="prod")
    assert prod.one("aws:dynamodb/table:Table", "agent-sessions").inputs["deletionProtectionEnabled"] is True


def test_missing_bundle_warns_at_preview(dev):
    assert any("agent-infra build" in line for line in dev.log)


def test_bundle_is_found_under_the_project_root_when_the_cli_runs_the_program_from_main(tmp_path):
    from agent_infra.offline import run_project

    (tmp_path / "Pulumi.yaml").write_text("name: x\nruntime: python\nmain: stacks/\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.t.yaml").write_text("config: {}\n")
    (tmp_path / "stacks" / "__main__.py").write_text(
        "import os, pulumi\n"
        "from agent_infra.components.aws.lambda_code import bundle_path\n"
        "pulumi.export('bundle', str(bundle_path('python3.12', 'arm64')))\n"
        "pulumi.export('cwd', os.getcwd())\n")
    (tmp_path / "Pulumi.yaml").write_text("name: x\nruntime: python\nmain: stacks/\nstackConfigDir: stacks\n")
    plan = run_project(tmp_path, "t")
    assert plan.outputs["cwd"] == str(tmp_path / "stacks")  # the CLI's pwd is the main folder
    assert plan.outputs["bundle"] == str(tmp_path / ".agent-infra/build/lambda-python3.12-arm64.zip")


def test_no_policy_repeats_a_sid_or_grants_a_non_action(dev):
    # IAM refuses repeated Sids (MalformedPolicyDocument); TransactWriteItems is authorised per item.
    for policy in dev.of_type("aws:iam/rolePolicy:RolePolicy"):
        doc = json.loads(policy.inputs["policy"])
        sids = [s["Sid"] for s in doc["Statement"] if "Sid" in s]
        assert len(sids) == len(set(sids)), (policy.name, sids)
        actions = {a for s in doc["Statement"] for a in s["Action"]}
        assert "dynamodb:TransactWriteItems" not in actions, policy.name
def test_policy_document_refuses_a_repeated_sid():
    from agent_infra.components.aws.iam import Grant, policy_document
    with pytest.raises(ValueError, match="SessionState used more than once"):
        policy_document([Grant(("dynamodb:GetItem",), ("arn:a",), "SessionState"),
                         Grant(("dynamodb:GetItem",), ("arn:b",), "SessionState")])
def test_dev_stack_functions_get_their_api_keys_from_secrets_manager(repo_root):
    # Without keys the HTTP handler refuses to start: the stack must give every function a key path.
    from agent_infra.offline import run_project
    result = run_project(repo_root, "dev")
    secret = result.one("aws:secretsmanager/secret:Secret", "agent-secrets-api-keys")
    key = result.one("aws:kms/key:Key", "agent-secrets")
    assert secret.inputs["kmsKeyId"] == key.outputs["arn"]
    for function in result.of_type(LAMBDA):
        env = function.inputs["environment"]["variables"]
        assert env["AGENT_API_KEYS_SECRET_ARN"] == secret.outputs["arn"], function.name
        assert "AGENT_API_KEYS" not in env
        policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy", f"{function.name}-policy").inputs["policy"])
        reads = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
        assert reads["ReadAppSecrets"] == [secret.outputs["arn"]] and reads["DecryptAppSecrets"] == [key.outputs["arn"]]
