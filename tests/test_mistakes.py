"""Mistakes are named: the key, the component, the role, the setting; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from agent_infra.components.aws import Queue
from agent_infra.components.errors import ConfigError

from agent_infra.offline import synthesize

CLI = [sys.executable, "-m", "agent_infra.cli"]
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=ENV)


def project(tmp_path: Path, stack_yaml: str, program: str | None = None, name: str = "acme") -> Path:
    (tmp_path / "Pulumi.yaml").write_text(f"name: {name}\nruntime: python\n")
    (tmp_path / "Pulumi.t.yaml").write_text(textwrap.dedent(stack_yaml))
    main = program or (Path(__file__).resolve().parent.parent / "stacks" / "__main__.py").read_text()
    (tmp_path / "__main__.py").write_text(textwrap.dedent(main))
    return tmp_path


def test_an_unknown_transform_role_is_refused_listing_the_roles():
    with pytest.raises(ConfigError) as info:
        synthesize(lambda: Queue("audit-events", {"transforms": {"queeu": {"delay_seconds": 10}}}))
    (line,) = info.value.problems
    assert "transforms.queeu: unknown role 'queeu'" in line
    for role in ("queue", "dlq", "dlq_alarm", "redrive_allow"):
        assert role in line


def test_a_bad_key_inside_a_transform_names_component_role_and_key():
    with pytest.raises(ConfigError) as info:
        synthesize(lambda: Queue("audit-events", {"transforms": {"queue": {"delay_secondz": 10}}}))
    (line,) = info.value.problems
    assert line.startswith("Queue('audit-events').transforms.queue.delay_secondz: not an argument of aws.sqs.Queue")
    assert "delay_seconds" in line  # and says what it does take


def test_every_component_documents_its_transform_roles():
    import typing

    from agent_infra.components._base import ComponentArgs

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    import agent_infra.components.aws
    import agent_infra.components.docker
    import agent_infra.components.gcp
    import agent_infra.components.kubernetes  # noqa: F401 (registers every args model)

    checked = 0
    for model in subclasses(ComponentArgs):
        field = model.model_fields.get("transforms")
        if field is None:
            continue
        key_type = typing.get_args(field.annotation)[0]
        roles = typing.get_args(key_type)
        if not roles:  # str keys: roles named by the caller (network policies by their own names)
            continue
        checked += 1
        for role in roles:
            assert f"`{role}`" in (field.description or ""), (model.__name__, role)
    assert checked >= 30


def test_a_wrong_typed_stack_value_exits_2_naming_the_key(tmp_path):
    result = cli("preview", "--stack", "t", cwd=project(tmp_path, """
        config:
          agent-infra:deployment: "cloud: aws"
    """))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "agent-infra:deployment: must be a mapping" in result.stderr


def test_a_project_not_named_agent_infra_reads_agent_infra_deployment(tmp_path):
    result = cli("preview", "--stack", "t", "--json", cwd=project(tmp_path, """
        config:
          agent-infra:deployment: {cloud: aws, topology: serverless, environment: dev}
    """, name="acme-bot"))
    assert result.returncode == 0, result.stderr
    assert '"project": "acme-bot"' in result.stdout


def test_the_projects_own_namespace_is_pointed_at_the_right_key(tmp_path):
    result = cli("preview", "--stack", "t", cwd=project(tmp_path, """
        config:
          acme-bot:deployment: {cloud: aws, topology: serverless}
    """, name="acme-bot"))
    assert result.returncode == 2
    assert "agent-infra:deployment: missing, but the stack has acme-bot:deployment" in result.stderr


def test_regions_primary_and_aws_region_must_agree(tmp_path):
    result = cli("preview", "--stack", "t", cwd=project(tmp_path, """
        config:
          aws:region: us-east-1
          agent-infra:deployment: {cloud: aws, topology: serverless, regions: {primary: eu-west-1}}
    """))
    assert result.returncode == 2
    assert "deployment.regions.primary: eu-west-1 but aws:region is us-east-1" in result.stderr
    assert "pulumi config set aws:region eu-west-1" in result.stderr


def test_regions_primary_alone_is_the_region_the_plan_uses(tmp_path):
    import json

    result = cli("preview", "--stack", "t", "--json", cwd=project(tmp_path, """
        config:
          agent-infra:deployment: {cloud: aws, topology: serverless, regions: {primary: eu-west-1}}
    """))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    providers = [r for r in plan["resources"] if r["type"] == "pulumi:providers:aws"]
    assert [p["inputs"]["region"] for p in providers] == ["eu-west-1"]
    queues = [r for r in plan["resources"] if r["type"] == "aws:sqs/queue:Queue"]
    assert queues and all(".eu-west-1." in q["outputs"]["url"] for q in queues)


def test_component_argument_errors_are_not_called_stack_config(tmp_path):
    result = cli("preview", "--stack", "t", cwd=project(tmp_path, "config: {}\n", program="""
        from agent_infra.components.aws import Queue
        Queue("jobs", {"max_receive_count": 0})
    """))
    assert result.returncode == 2
    assert "invalid component arguments" in result.stderr and "invalid config for stack" not in result.stderr
    assert "jobs.max_receive_count: Input should be greater than or equal to 1" in result.stderr


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["serve", "--port", "99999"], {}, "error: AGENT_PORT (or --port): Input should be less than or equal to 65535, got 99999"),
    (["serve"], {"AGENT_QUEUE_BACKEND": "kafka"}, "error: AGENT_QUEUE_BACKEND: Input should be"),
    (["dlq", "list"], {"AGENT_QUEUE_BACKEND": "redis", "AGENT_REDIS_URL": "redis://127.0.0.1:9/0"},
     "error: a backend is unreachable (redis"),
])
def test_agent_app_settings_mistakes_are_one_line(tmp_path, args, env, expected):
    result = subprocess.run([sys.executable, "-m", "agent_infra.agent_app.cli", *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[0].startswith(expected), result.stderr


@pytest.mark.parametrize("command", [[*CLI], [sys.executable, "-m", "agent_infra.agent_app.cli"]])
def test_both_clis_have_version(command, tmp_path):
    from agent_infra import __version__

    result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip().endswith(__version__)


def test_an_error_quoting_brackets_prints_them_as_written(tmp_path):
    # The bad value is echoed in the message; Rich would read `[/]` as markup and crash with a traceback.
    result = cli("preview", "--stack", "t", cwd=project(tmp_path, """
        config:
          agent-infra:deployment: {cloud: aws, topology: serverless, environment: "[/]"}
    """))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "deployment.environment:" in result.stderr and "'[/]'" in result.stderr
