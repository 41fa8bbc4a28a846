"""The pack under the real CrossGuard protocol, compared with the offline runner.

The pack is started the way the Pulumi CLI starts a Python policy pack:
`python -u -m pulumi.policy <engine address> <pack dir>`, with the pack dir as working directory
and the stack's identity in PULUMI_PROJECT / PULUMI_STACK / PULUMI_DRY_RUN. It prints the port
of its Analyzer gRPC server on stdout. The engine address points at a tiny fake Engine server
(only `Log` matters: the SDK sends the pack's log lines there). We then play the engine's part:
GetAnalyzerInfo, Configure, one Analyze per resource of an offline plan, AnalyzeStack with all of
them, and assert the diagnostics equal what `agent-infra policy` reports for the same plan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import insecure_program
import pytest
from agent_infra.policies import PACK_DIR
from agent_infra.policies.engine import Violation, evaluate, resolve_config, resources_from_plan
from agent_infra.policies.rules import ALL_RULES
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

from agent_infra.offline import UNKNOWN_MARK, Plan, PlannedResource, run_project, synthesize

REPO = Path(__file__).resolve().parents[2]
LEVELS = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
          "disabled": analyzer_pb2.DISABLED, "remediate": analyzer_pb2.REMEDIATE}
# One policy downgraded and one threshold changed, to prove the config reaches the pack.
POLICY_CONFIG = {"required-tags": "mandatory", "log-group-retention": {"maxDays": 7},
                 "queue-visibility-timeout": {"enforcementLevel": "advisory", "multiplier": 12}}

pytestmark = pytest.mark.slow


class FakeEngine(engine_pb2_grpc.EngineServicer):
    """The engine's side of the pack's connection: collects log lines."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.logs.append(request.message)
        return empty_pb2.Empty()


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    engine = FakeEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    engine_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    env = {**os.environ, "PULUMI_PROJECT": "insecure", "PULUMI_STACK": "ci", "PULUMI_DRY_RUN": "true",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH")]))}
    pack = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", str(PACK_DIR)],
                            cwd=PACK_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert pack.stdout is not None
        line = pack.stdout.readline().strip()
        if not line.isdigit():
            pack.kill()
            raise AssertionError(f"the pack did not print its port; stdout {line!r}, stderr:\n{pack.communicate()[1]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
        assert not [log for log in engine.logs if "error" in log.lower()], engine.logs
    finally:
        pack.terminate()
        pack.communicate(timeout=10)  # closes the pipes
        server.stop(0)


def _wire(value: Any) -> Any:
    """Plan values as the engine sends them: unknowns become the wire's unknown sentinel."""
    if value == UNKNOWN_MARK or type(value).__name__ == "Unknown":  # the plan may hold pulumi.output.Unknown
        return rpc.UNKNOWN
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(_wire(values), default=str)))
    return struct


def _provider(plan: Plan, resource: PlannedResource) -> analyzer_pb2.AnalyzerProviderResource | None:
    if not resource.provider:
        return None
    provider = plan.by_urn(resource.provider)
    return analyzer_pb2.AnalyzerProviderResource(type=provider.type, properties=_struct(provider.inputs),
                                                 urn=provider.urn, name=provider.name)


def _configure(stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
    resolved = resolve_config(ALL_RULES, POLICY_CONFIG)
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, settings in resolved.items():
        config = request.policyConfig[name]
        config.enforcementLevel = LEVELS[settings["enforcementLevel"]]
        config.properties.update({k: v for k, v in settings.items() if k != "enforcementLevel"})
    stub.Configure(request)


def grpc_diagnostics(stub: analyzer_pb2_grpc.AnalyzerStub, plan: Plan) -> list[tuple[str, str, int, str]]:
    _configure(stub)
    found: list[tuple[str, str, int, str]] = []
    for r in plan.resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name,
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=r.parent or ""))
        provider = _provider(plan, r)
        if provider is not None:
            request.provider.CopyFrom(provider)
        for d in stub.Analyze(request).diagnostics:
            found.append((d.policyName, d.message, d.enforcementLevel, d.urn or r.urn))
    stack = analyzer_pb2.AnalyzeStackRequest()
    for r in plan.resources:
        item = stack.resources.add(type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name,
                                   parent=r.parent or "", dependencies=r.dependencies,
                                   options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=r.parent or ""))
        provider = _provider(plan, r)
        if provider is not None:
            item.provider.CopyFrom(provider)
    for d in stub.AnalyzeStack(stack).diagnostics:
        found.append((d.policyName, d.message, d.enforcementLevel, d.urn))
    return sorted(found)


def offline_diagnostics(plan: Plan) -> list[tuple[str, str, int, str]]:
    violations: list[Violation] = evaluate(ALL_RULES, resources_from_plan(plan), POLICY_CONFIG)
    return sorted((v.policy, v.crossguard_message, LEVELS[v.level], v.urn or "") for v in violations)


def test_analyzer_info_lists_every_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "agent-infra" and info.supportsConfig
    by_name = {p.name: p for p in info.policies}
    assert list(by_name) == [r.name for r in ALL_RULES]
    for rule in ALL_RULES:
        policy = by_name[rule.name]
        assert policy.description == rule.description
        assert policy.enforcementLevel == LEVELS[rule.level]
        assert policy.remediation_steps == rule.remediation
        assert set(policy.configSchema.properties) == set(rule.config)


@pytest.fixture(scope="module")
def insecure_plan() -> Plan:
    return synthesize(insecure_program.run, project="insecure", stack="ci")


def test_insecure_program_diagnostics_match_offline(analyzer: analyzer_pb2_grpc.AnalyzerStub,
                                                    insecure_plan: Plan) -> None:
    over_grpc = grpc_diagnostics(analyzer, insecure_plan)
    assert over_grpc == offline_diagnostics(insecure_plan)
    policies = {d[0] for d in over_grpc if d[2] == analyzer_pb2.MANDATORY}
    assert {p for p, _ in insecure_program.EXPECTED_MANDATORY} | {"required-tags"} == policies
    retention = [d for d in over_grpc if d[0] == "log-group-retention"]
    assert retention and "retentionInDays is not set" in retention[0][1]


STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_diagnostics_match_offline(analyzer: analyzer_pb2_grpc.AnalyzerStub, stack: str) -> None:
    plan = run_project(REPO, stack)
    assert grpc_diagnostics(analyzer, plan) == offline_diagnostics(plan)


def test_unknown_values_never_violate(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    """Values computed during preview reach the pack as the wire's unknown sentinel: no diagnostic,
    not even the SDK's "can't run policy during preview" advisory."""
    unknown = PlannedResource(
        type="aws:cloudwatch/logGroup:LogGroup", name="computed", urn="urn:pulumi:ci::insecure::x::computed",
        parent=None, provider=None, custom=True, inputs={"retentionInDays": UNKNOWN_MARK, "tags": UNKNOWN_MARK})
    stage = PlannedResource(
        type="aws:apigatewayv2/stage:Stage", name="stage", urn="urn:pulumi:ci::insecure::y::stage", parent=None,
        provider=None, custom=True, inputs={"defaultRouteSettings": UNKNOWN_MARK, "accessLogSettings": UNKNOWN_MARK,
                                            "tags": UNKNOWN_MARK})
    budget = PlannedResource(
        type="aws:budgets/budget:Budget", name="budget", urn="urn:pulumi:ci::insecure::z::budget", parent=None,
        provider=None, custom=True, inputs={"notifications": UNKNOWN_MARK, "tags": UNKNOWN_MARK})
    plan = Plan(project="insecure", stack="ci", resources=[unknown, stage, budget], outputs={})
    assert grpc_diagnostics(analyzer, plan) == offline_diagnostics(plan) == []


def test_stack_tags_from_configure_stack_reach_the_policies(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    """The CLI sends the stack's tags with ConfigureStack; an `environment: prod` stack tag makes
    deletion protection required for resources without their own environment tag."""
    table = PlannedResource(type="aws:dynamodb/table:Table", name="sessions", urn="urn:pulumi:ci::insecure::t::sessions",
                            parent=None, provider=None, custom=True,
                            inputs={"pointInTimeRecovery": {"enabled": True}, "deletionProtectionEnabled": False})
    plan = Plan(project="insecure", stack="ci", resources=[table], outputs={})
    analyzer.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(stack="ci", project="insecure",
                                                                       tags={"environment": "prod"}))
    try:
        over_grpc = grpc_diagnostics(analyzer, plan)
    finally:
        analyzer.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(stack="ci", project="insecure"))
    offline = sorted((v.policy, v.crossguard_message, LEVELS[v.level], v.urn or "") for v in evaluate(
        ALL_RULES, resources_from_plan(plan), POLICY_CONFIG, stack_tags={"environment": "prod"}))
    assert over_grpc == offline
    assert [d[0] for d in over_grpc if d[2] == analyzer_pb2.MANDATORY] == [
        "budget-with-notifications", "deletion-protection-in-production", "required-tags"]
