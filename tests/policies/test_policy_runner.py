"""The offline runner end to end: a deliberately insecure program, the CLI, formats, config files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import insecure_program
import pytest
from agent_infra.policies import PACK_DIR
from agent_infra.policies.rules import ALL_RULES
from typer.testing import CliRunner

from agent_infra.cli import app
from agent_infra.offline import Plan, synthesize
from agent_infra.policy_cli import check_plan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def insecure_plan() -> Plan:
    return synthesize(insecure_program.run, project="insecure", stack="ci")


@pytest.fixture(scope="module")
def insecure_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insecure")
    (root / "Pulumi.yaml").write_text("name: insecure\nruntime: python\n")
    (root / "Pulumi.ci.yaml").write_text("config: {}\n")
    (root / "__main__.py").write_text(insecure_program.SOURCE)
    return root


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`agent-infra ...` as a user runs it (the console script's module, in a fresh process)."""
    return subprocess.run([sys.executable, "-m", "agent_infra.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_insecure_program_has_exactly_the_expected_violations(insecure_plan: Plan) -> None:
    report = check_plan(insecure_plan)
    assert {(v.policy, v.resource_name) for v in report.mandatory} == insecure_program.EXPECTED_MANDATORY
    assert {v.policy for v in report.advisory} == {"required-tags"}
    messages = {f"{v.resource_name}: {v.message}" for v in report.violations}
    assert "api: OPENAI_API_KEY holds a literal value that looks like an OpenAI API key" in messages
    assert "ssh: ingress[0] allows ingress from 0.0.0.0/0 to port 22" in messages
    assert "admin: policy statement Everything allows Action '*' on Resource '*'" in messages
    assert report.exit_code == 1


@pytest.mark.slow
def test_cli_exits_1_and_names_violations_grouped_by_resource(insecure_project: Path) -> None:
    result = cli("policy", "--project", str(insecure_project), "--stack", "ci")
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "api (aws:lambda/function:Function)\n  [mandatory] function-timeout-bounds: timeout is not set" in out
    assert "  [mandatory] no-plaintext-secrets: OPENAI_API_KEY holds a literal value" in out
    assert "      fix: Keep the value in Secrets Manager (agent-infra: app.secrets) and pass only its ARN" in out
    assert out.index("stack insecure/ci") < out.index("admin (aws:iam/rolePolicy:RolePolicy)")
    assert f"insecure/ci: {len(ALL_RULES)} policies" in out and "FAILED" in out


@pytest.mark.slow
def test_cli_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(f"name: agent-infra\nruntime: python\nmain: {REPO / 'stacks'}\n")
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  agent-infra:deployment:\n    cloud: aws\n    topology: serverless\n"
        "    timeouts: {run_seconds: 5000}\n")
    result = cli("policy", "--project", str(tmp_path), "--stack", "bad")
    assert result.returncode == 2
    assert "deployment.timeouts.run_seconds: Lambda runs at most 900 s" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_policy_path_prints_the_pack_folder() -> None:
    result = invoke("policy", "path")
    assert result.exit_code == 0
    folder = Path(result.stdout.strip())
    assert folder == PACK_DIR and (folder / "PulumiPolicy.yaml").is_file() and (folder / "__main__.py").is_file()


def test_json_format(insecure_project: Path) -> None:
    result = invoke("policy", "--project", str(insecure_project), "--stack", "ci", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["passed"] is False
    assert document["summary"]["mandatory"] == len([v for v in document["violations"] if v["level"] == "mandatory"])
    assert {(v["policy"], v["resourceName"]) for v in document["violations"] if v["level"] == "mandatory"} == \
        insecure_program.EXPECTED_MANDATORY


def test_sarif_format_is_valid_2_1_0(insecure_project: Path, tmp_path: Path) -> None:
    target = tmp_path / "policy.sarif"
    result = invoke("policy", "--project", str(insecure_project), "--stack", "ci", "--format", "sarif",
                    "--output", str(target))
    assert result.exit_code == 1
    assert "FAILED" in result.stdout  # the text summary still goes to stdout
    sarif = json.loads(target.read_text())
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "agent-infra-policy"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) == len(ALL_RULES)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note", "none")
    assert run["results"]
    for res in run["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning") and res["message"]["text"]
        (location,) = res["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] and physical["region"]["startLine"] >= 1
        assert location["logicalLocations"][0]["name"]
    errors = {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]) for r in run["results"]
              if r["level"] == "error"}
    assert ("no-public-ingress", "ssh") in errors


def test_junit_format(insecure_project: Path) -> None:
    result = invoke("policy", "--project", str(insecure_project), "--stack", "ci", "--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout.split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(ALL_RULES))
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failed == {policy for policy, _ in insecure_program.EXPECTED_MANDATORY}
    assert suite.get("failures") == str(len(failed))


def test_policy_config_file_downgrades_levels_and_sets_thresholds(insecure_project: Path, tmp_path: Path) -> None:
    config = tmp_path / "policy-config.yaml"
    lines = [f"{p}: advisory" for p in sorted({p for p, _ in insecure_program.EXPECTED_MANDATORY})]
    config.write_text("\n".join(lines) + "\nlog-group-retention:\n  enforcementLevel: disabled\n  maxDays: 30\n")
    result = invoke("policy", "--project", str(insecure_project), "--stack", "ci", "--config", str(config))
    assert result.exit_code == 0, result.stdout
    assert "[advisory] no-public-ingress" in result.stdout and "log-group-retention" not in result.stdout
    assert "passed" in result.stdout


def test_bad_policy_config_exits_2(insecure_project: Path, tmp_path: Path) -> None:
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"queue-has-dql": "advisory", "log-group-retention": {"maxDayz": 3},
                                  "dlq-alarm": {"enforcementLevel": "strict"}}))
    result = CliRunner().invoke(app, ["policy", "--project", str(insecure_project), "--stack", "ci",
                                      "--config", str(config)])
    assert result.exit_code == 2
    assert "queue-has-dql: no such policy" in result.output
    assert "log-group-retention.maxDayz: unknown setting; settings of log-group-retention: maxDays, minDays" in \
        result.output
    assert "dlq-alarm.enforcementLevel: must be one of advisory, mandatory, disabled, remediate, got 'strict'" in \
        result.output


def test_policy_list_names_every_policy() -> None:
    result = invoke("policy", "list", "--json")
    assert result.exit_code == 0
    assert [p["name"] for p in json.loads(result.stdout)] == [r.name for r in ALL_RULES]


def test_missing_stack_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["policy"])
    assert result.exit_code == 2
    assert "missing --stack NAME" in result.output
