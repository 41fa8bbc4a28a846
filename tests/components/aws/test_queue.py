import json

import pytest
from agent_infra.components.aws import Queue
from agent_infra.components.errors import ConfigError


def test_queue_defaults_are_encrypted_with_dlq(plan):
    result = plan.run(lambda: Queue("jobs"))
    queue = result.one("aws:sqs/queue:Queue", "jobs")
    dlq = result.one("aws:sqs/queue:Queue", "jobs-dlq")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert dlq.inputs["sqsManagedSseEnabled"] is True
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq.outputs["arn"], "maxReceiveCount": 3}
    assert dlq.inputs["messageRetentionSeconds"] == 14 * 86_400
    assert queue.inputs["receiveWaitTimeSeconds"] == 20
    component = result.one("agent-infra:aws:Queue", "jobs")
    assert {r.name for r in result.children(component)} == {"jobs", "jobs-dlq", "jobs-dlq-redrive-allow",
                                                             "jobs-dlq-not-empty"}
    assert component.outputs["url"] == queue.outputs["url"]


def test_a_queue_on_its_own_alarms_when_its_dlq_is_not_empty(plan):
    from agent_infra.policy_cli import check_plan

    result = plan.run(lambda: Queue("jobs", {"alarm_actions": ["arn:aws:sns:us-east-1:123456789012:oncall"]}))
    alarm = result.one("aws:cloudwatch/metricAlarm:MetricAlarm", "jobs-dlq-not-empty")
    assert alarm.inputs["dimensions"] == {"QueueName": result.one("aws:sqs/queue:Queue", "jobs-dlq").outputs["name"]}
    assert alarm.inputs["threshold"] == 0 and alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm.inputs["alarmActions"] == ["arn:aws:sns:us-east-1:123456789012:oncall"]
    assert "dlq-alarm" not in {v.policy for v in check_plan(result).violations}  # the README's example, standalone
    without = plan.run(lambda: Queue("jobs", {"dlq_alarm": False}))
    assert "dlq-alarm" in {v.policy for v in check_plan(without).mandatory}


def test_dlq_accepts_redrive_only_from_its_queue(plan):
    result = plan.run(lambda: Queue("jobs"))
    allow = json.loads(result.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy").inputs["redriveAllowPolicy"])
    assert allow == {"redrivePermission": "byQueue",
                     "sourceQueueArns": [result.one("aws:sqs/queue:Queue", "jobs").outputs["arn"]]}


def test_customer_key_replaces_managed_encryption(plan):
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"
    result = plan.run(lambda: Queue("jobs", {"kms_key_arn": key}))
    for name in ("jobs", "jobs-dlq"):
        queue = result.one("aws:sqs/queue:Queue", name)
        assert queue.inputs["kmsMasterKeyId"] == key
        assert "sqsManagedSseEnabled" not in queue.inputs


def test_transform_dict_and_function_reach_the_named_child(plan):
    def longer_retention(args, opts):
        args["message_retention_seconds"] = 7 * 86_400

    result = plan.run(lambda: Queue("jobs", {"transforms": {"queue": {"delay_seconds": 5}, "dlq": longer_retention}}))
    assert result.one("aws:sqs/queue:Queue", "jobs").inputs["delaySeconds"] == 5
    assert result.one("aws:sqs/queue:Queue", "jobs-dlq").inputs["messageRetentionSeconds"] == 7 * 86_400


def test_out_of_range_arg_names_the_field():
    with pytest.raises(ConfigError) as error:
        Queue("jobs", {"max_receive_count": 0})
    assert error.value.problems == ["jobs.max_receive_count: Input should be greater than or equal to 1, got 0"]


def test_unknown_arg_is_refused():
    with pytest.raises(ConfigError, match=r"jobs.visibility_timeout: unknown key"):
        Queue("jobs", {"visibility_timeout": 30})


def test_grants_name_exact_actions_and_arns(plan):
    captured = {}

    def program():
        queue = Queue("jobs")
        captured["send"], captured["consume"] = queue.grant_send(), queue.grant_consume()

    plan.run(program)
    assert captured["send"].actions == ("sqs:SendMessage", "sqs:GetQueueAttributes")
    assert "sqs:ChangeMessageVisibility" in captured["consume"].actions
    assert not any("*" in action for action in captured["consume"].actions)
