"""The offline runner's two SDK settings (``agent_infra.offline._OfflineSpeedups``): the cyclic GC is
paused while a plan runs and the SDK's per-registration source positions are skipped unless asked
for; both are restored afterwards, also when plans nest, and the plan is the
same either way."""

from __future__ import annotations

import gc

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import resource as sdk_resource

from agent_infra.offline import synthesize


def program():
    queue = aws.sqs.Queue("jobs", sqs_managed_sse_enabled=True)
    aws.sqs.QueuePolicy("jobs-policy", queue_url=queue.url, policy=queue.arn.apply(lambda a: f'{{"r":"{a}"}}'))
    pulumi.export("queue_url", queue.url)


@pytest.fixture
def stack_trace_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls of the SDK's stack walker (wrapped before synthesize saves and swaps it)."""
    calls: list[int] = []
    original = sdk_resource._get_stack_trace

    def counting():
        calls.append(1)
        return original()

    monkeypatch.setattr(sdk_resource, "_get_stack_trace", counting)
    return calls


def test_source_positions_skipped_by_default_and_computed_on_request(stack_trace_calls: list[int]):
    fast = synthesize(program)
    assert stack_trace_calls == []
    full = synthesize(program, source_positions=True)
    assert len(stack_trace_calls) >= 2  # at least once per registration
    assert fast.to_json() == full.to_json()


def test_sdk_stack_walker_restored_after_plan_and_after_failure(stack_trace_calls: list[int]):
    before = sdk_resource._get_stack_trace
    synthesize(program)

    def broken():
        aws.sqs.Queue("q")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        synthesize(broken)
    assert sdk_resource._get_stack_trace is before


def test_collector_paused_during_plan_and_restored():
    seen: list[bool] = []

    def probe():
        seen.append(gc.isenabled())
        program()

    assert gc.isenabled()
    synthesize(probe)
    assert seen == [False]
    assert gc.isenabled()


def test_collector_left_off_if_it_was_off():
    gc.disable()
    try:
        synthesize(program)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_nested_switch_restores_only_when_the_outermost_ends():
    from agent_infra.offline import _SPEEDUPS

    original = sdk_resource._get_stack_trace
    with _SPEEDUPS.active(source_positions=False):
        with _SPEEDUPS.active(source_positions=True):
            assert not gc.isenabled()
            assert sdk_resource._get_stack_trace is not original  # the outer one still skips them
        assert not gc.isenabled()
        assert sdk_resource._get_stack_trace is not original
    assert gc.isenabled()
    assert sdk_resource._get_stack_trace is original
