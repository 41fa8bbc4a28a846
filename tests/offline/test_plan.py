"""The offline plan engine: re-entrancy, invokes, secret masking, outputs, queries."""

from __future__ import annotations

import json
import textwrap

import pulumi
import pulumi_aws as aws
import pytest

from agent_infra.offline import SECRET_MASK, UNKNOWN_MARK, PlanError, run_project, synthesize


def small_program():
    queue = aws.sqs.Queue("jobs", sqs_managed_sse_enabled=True)
    pulumi.export("queue_url", queue.url)
    pulumi.export("answer", 42)


def test_two_runs_in_one_process_do_not_leak():
    first = synthesize(small_program, stack="one")
    second = synthesize(small_program, stack="two")
    assert len(first) == len(second) == 1
    assert first.outputs == {"queue_url": first.one("aws:sqs/queue:Queue").outputs["url"], "answer": 42}
    assert second.outputs["answer"] == 42
    assert "::two::" not in first.resources[0].urn and "urn:pulumi:two::" in second.resources[0].urn


def test_plan_is_deterministic():
    assert synthesize(small_program).to_json() == synthesize(small_program).to_json()


def test_invokes_answer_with_plausible_values():
    def program():
        identity = aws.get_caller_identity_output()
        region = aws.get_region_output()
        zones = aws.get_availability_zones_output()
        doc = aws.iam.get_policy_document_output(statements=[{
            "actions": ["sqs:SendMessage"], "resources": ["arn:aws:sqs:us-east-1:123456789012:q"],
            "principals": [{"type": "Service", "identifiers": ["lambda.amazonaws.com"]}],
            "conditions": [{"test": "StringEquals", "variable": "aws:SourceAccount", "values": ["123456789012"]}]}])
        pulumi.export("account", identity.account_id)
        pulumi.export("region", region.region)
        pulumi.export("zones", zones.names)
        pulumi.export("policy", doc.json)

    plan = synthesize(program, config={"aws:region": "eu-west-1"})
    assert plan.outputs["account"] == "123456789012"
    assert plan.outputs["region"] == "eu-west-1"
    assert plan.outputs["zones"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert json.loads(plan.outputs["policy"]) == {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:123456789012:q",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]}


def test_secrets_are_masked_and_their_paths_recorded():
    def program():
        secret = aws.secretsmanager.Secret("key")
        aws.secretsmanager.SecretVersion("key-v1", secret_id=secret.id,
                                         secret_string=pulumi.Output.secret("sk-live-do-not-print"))
        pulumi.export("leak", pulumi.Output.secret("also-secret"))

    plan = synthesize(program)
    version = plan.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretString"] == SECRET_MASK
    assert version.secret_paths == ["secretString"]
    assert plan.outputs["leak"] == SECRET_MASK
    assert "sk-live-do-not-print" not in plan.to_json() and "also-secret" not in plan.to_json()


def test_providers_parents_and_regions_are_recorded():
    class Pair(pulumi.ComponentResource):
        def __init__(self, name, opts=None):
            super().__init__("test:index:Pair", name, None, opts)
            aws.sqs.Queue(f"{name}-q", opts=pulumi.ResourceOptions(parent=self))
            self.register_outputs({"ok": True})

    def program():
        west = aws.Provider("west", region="us-west-2")
        Pair("pair", opts=pulumi.ResourceOptions(providers=[west]))

    plan = synthesize(program)
    component = plan.one("test:index:Pair", "pair")
    queue = plan.one("aws:sqs/queue:Queue", "pair-q")
    assert queue.parent == component.urn and plan.children(component) == [queue]
    assert queue.provider == plan.one("pulumi:providers:aws", "west").urn
    assert queue.outputs["arn"].startswith("arn:aws:sqs:us-west-2:")
    assert component.outputs == {"ok": True} and component.custom is False


def test_unknown_outputs_are_marked():
    def program():
        bucket = aws.s3.BucketV2("b")
        aws.sqs.Queue("q", name=bucket.hosted_zone_id)  # not computed by the mocks

    plan = synthesize(program)
    assert plan.one("aws:sqs/queue:Queue").inputs["name"] == UNKNOWN_MARK


def test_query_helpers():
    plan = synthesize(small_program)
    assert plan.find(name="jobs")[0].type == "aws:sqs/queue:Queue"
    assert plan.count_by_type() == {"aws:sqs/queue:Queue": 1}
    with pytest.raises(LookupError, match="expected one aws:sqs/queue:Queue named nope, found 0"):
        plan.one("aws:sqs/queue:Queue", "nope")


def test_program_errors_reach_the_caller():
    def program():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        synthesize(program)
    assert len(synthesize(small_program)) == 1  # and the engine still works afterwards


def write_project(root, program: str, stack_yaml: str, stack: str = "test") -> None:
    (root / "Pulumi.yaml").write_text("name: mine\nruntime: python\n")
    (root / "__main__.py").write_text(textwrap.dedent(program))
    (root / f"Pulumi.{stack}.yaml").write_text(textwrap.dedent(stack_yaml))


def test_run_project_reads_stack_config_and_secure_values(tmp_path):
    write_project(tmp_path, """
        import pulumi, pulumi_aws as aws
        cfg = pulumi.Config()
        aws.sqs.Queue("q", name=cfg.require("queueName"))
        pulumi.export("token", cfg.require_secret("token"))
        pulumi.export("size", cfg.require_object("sizes")["large"])
    """, """
        config:
          aws:region: eu-central-1
          mine:queueName: tasks
          mine:sizes: {large: 3}
          mine:token:
            secure: v1:abcdef
    """)
    plan = run_project(tmp_path, "test")
    assert plan.one("aws:sqs/queue:Queue").outputs["url"] == "https://sqs.eu-central-1.amazonaws.com/123456789012/tasks"
    assert plan.outputs == {"token": SECRET_MASK, "size": 3}


def test_run_project_missing_stack_lists_the_available_ones(tmp_path):
    write_project(tmp_path, "", "config: {}\n", stack="dev")
    with pytest.raises(PlanError, match=r"no stack 'prod'.*stacks here: dev"):
        run_project(tmp_path, "prod")


def test_example_stack_plans_are_byte_identical_across_runs(repo_root):
    for stack in sorted(p.name.split(".")[1] for p in (repo_root / "stacks").glob("Pulumi.*.yaml")):
        assert run_project(repo_root, stack).to_json() == run_project(repo_root, stack).to_json(), stack
