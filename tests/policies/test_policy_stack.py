"""Stack-wide policies: budget, dead-letter queues, required tags."""

from __future__ import annotations

from agent_infra.policies.engine import UNKNOWN
from policy_helpers import dumps, messages, res

QUEUE = "aws:sqs/queue:Queue"
TAGS = {"project": "agent-infra", "stack": "dev", "environment": "dev"}


def test_budget_with_notifications() -> None:
    queue = res(QUEUE, {})
    budget = res("aws:budgets/budget:Budget", {"notifications": [{"subscriberEmailAddresses": ["ops@example.com"]}]})
    assert messages("budget-with-notifications", queue, budget) == []
    assert messages("budget-with-notifications", res("kubernetes:apps/v1:Deployment", {})) == []
    assert messages("budget-with-notifications", queue) == ["stack: the stack creates 1 AWS resources but no budget"]
    silent = res("aws:budgets/budget:Budget", {"notifications": []}, name="budget")
    assert messages("budget-with-notifications", queue, silent) == ["budget: budget has no notification subscribers"]


def test_queue_has_dlq() -> None:
    dlq = res(QUEUE, {}, name="tasks-dlq")
    queue = res(QUEUE, {"redrivePolicy": dumps({"deadLetterTargetArn": "arn"})}, name="tasks", deps=(dlq,))
    computed = res(QUEUE, {"redrivePolicy": UNKNOWN}, name="computed", deps=(dlq,))
    assert messages("queue-has-dlq", dlq, queue, computed) == []
    assert messages("queue-has-dlq", res(QUEUE, {}, name="lonely")) == [
        "lonely: queue has no redrivePolicy, so a poison message is retried until it expires"]
    sub = "gcp:pubsub/subscription:Subscription"
    assert messages("queue-has-dlq", res(sub, {"topic": "t", "deadLetterPolicy": {"deadLetterTopic": "d"}}),
                    res(sub, {"topic": "d"}, name="dead-letter-reader")) == []
    assert messages("queue-has-dlq", res(sub, {"topic": "t"}, name="push")) == [
        "push: subscription has no deadLetterPolicy"]


def test_required_tags() -> None:
    assert messages("required-tags", res(QUEUE, {"tags": TAGS}),
                    res(QUEUE, {}, provider={"defaultTags": {"tags": TAGS}}),
                    res(QUEUE, {"tags": UNKNOWN}),
                    res("aws:iam/rolePolicy:RolePolicy", {})) == []
    assert messages("required-tags", res(QUEUE, {"tags": {"project": "p"}}, name="q"),
                    res("gcp:cloudrunv2/service:Service", {"labels": {"stack": "s"}}, name="run")) == [
        "q: missing tags: stack, environment", "run: missing tags: project, environment"]
    assert messages("required-tags", res(QUEUE, {"tags": TAGS}, name="q"),
                    config={"requiredTags": ["owner"]}) == ["q: missing tags: owner"]


def test_outputs_shapes_seen_by_stack_policies_under_the_cli() -> None:
    """AnalyzeStack gets outputs: an unset redrive policy is "", default tags are in tagsAll."""
    assert messages("queue-has-dlq", res(QUEUE, {"redrivePolicy": ""}, name="q")) == [
        "q: queue has no redrivePolicy, so a poison message is retried until it expires"]
    assert messages("required-tags", res(QUEUE, {"tags": {}, "tagsAll": TAGS})) == []
