"""`agent-infra` as a user runs it: a subprocess, exit codes, stdout/stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

CLI = [sys.executable, "-m", "agent_infra.cli"]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_console_script_is_installed():
    assert shutil.which("agent-infra"), "pip install -e '.[dev]' installs the agent-infra command"


def test_preview_dev_lists_the_serverless_resources(repo_root):
    result = run("preview", "--stack", "dev", cwd=repo_root)
    assert result.returncode == 0, result.stderr
    for expected in ("agent-infra:aws:ServerlessAgent", "aws:lambda/function:Function", "aws:sqs/queue:Queue",
                     "aws:dynamodb/table:Table", "aws:apigatewayv2/stage:Stage", "Resources by type", "endpoint"):
        assert expected in result.stdout, expected
    assert "Traceback" not in result.stderr


def test_preview_json_is_the_whole_plan(repo_root):
    result = run("preview", "--stack", "dev", "--json", cwd=repo_root)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["stack"] == "dev" and plan["outputs"]["endpoint"].startswith("https://")
    types = {r["type"] for r in plan["resources"]}
    assert {"aws:lambda/function:Function", "aws:sqs/queue:Queue", "aws:dynamodb/table:Table"} <= types


def write_project(root, stack_yaml: str, program: str | None = None) -> None:
    (root / "Pulumi.yaml").write_text("name: my-agents\nruntime: python\n")
    (root / "__main__.py").write_text(textwrap.dedent(program or """
        import pulumi
        from agent_infra.components import ServerlessAgent
        from agent_infra.components.aws import Queue

        agent = ServerlessAgent("support-bot", pulumi.Config().require_object("deployment"))
        extra = Queue("audit-events", {"max_receive_count": 5})
        pulumi.export("endpoint", agent.endpoint)
        pulumi.export("audit_queue", extra.url)
    """))
    (root / "Pulumi.dev.yaml").write_text(textwrap.dedent(stack_yaml))


def test_a_users_own_project_previews_with_project(tmp_path):
    write_project(tmp_path, """
        config:
          my-agents:deployment:
            cloud: aws
            topology: serverless
            environment: dev
    """)
    result = run("preview", "--stack", "dev", "--project", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    names = {r["name"] for r in plan["resources"]}
    assert {"support-bot", "support-bot-tasks", "audit-events", "audit-events-dlq"} <= names
    assert set(plan["outputs"]) == {"endpoint", "audit_queue"}


def test_bad_config_names_the_key_without_traceback(tmp_path):
    write_project(tmp_path, """
        config:
          my-agents:deployment:
            cloud: aws
            topology: serverless
            budget: {monthly_limit_usd: -10}
            scaling: {jobs_per_worker: 0}
    """)
    result = run("preview", "--stack", "dev", "--project", str(tmp_path))
    assert result.returncode == 2
    assert "deployment.budget.monthly_limit_usd: Input should be greater than 0, got -10" in result.stderr
    assert "deployment.scaling.jobs_per_worker: Input should be greater than or equal to 1, got 0" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_failing_program_exits_1_and_points_at_traceback_flag(tmp_path):
    write_project(tmp_path, "config: {}\n", program="raise KeyError('region')\n")
    result = run("preview", "--stack", "dev", "--project", str(tmp_path))
    assert result.returncode == 1
    assert "KeyError" in result.stderr and "--traceback" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("preview", "--stack", "nope"), "no stack 'nope'"),
    (("preview", "--stack", "dev", "--project", "/nonexistent-dir"), "no Pulumi.yaml"),
])
def test_usage_errors_exit_2(repo_root, args, message):
    result = run(*args, cwd=repo_root)
    assert result.returncode == 2 and message in result.stderr


def test_schema_is_json_schema_for_the_stack_file():
    result = run("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["properties"]["config"]["properties"]["agent-infra:deployment"]["$ref"] == "#/$defs/DeploymentConfig"
