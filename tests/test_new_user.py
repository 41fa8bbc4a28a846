"""The new user's path, end to end, outside this repository.

A wheel built from this checkout is installed (not editable) by the Pulumi CLI's own bootstrap
(`python -m venv <root>/venv`, `pip install --upgrade pip setuptools wheel`, then
`pip install -r requirements.txt` in the program folder: sdk/python/toolchain/pip.go) into a
project that has its own name and its own `components` package. Every topology on every cloud
previews and passes policy there, and `agent-infra build` bundles the installed agent_app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

# (stack, example stack whose deployment it starts from, topology)
STACKS = [
    ("aws-serverless", "dev", "serverless"),
    ("aws-container", "prod", "container"),
    ("aws-hybrid", "prod", "hybrid"),
    ("gcp-container", "gcp", "container"),
    ("gcp-hybrid", "gcp", "hybrid"),
    ("k8s-container", "k8s", "container"),
    ("k8s-hybrid", "k8s", "hybrid"),
    ("docker-container", "local", "container"),
    ("docker-hybrid", "local", "hybrid"),
]

PROGRAM = '''
"""acme-bot's own program: its components package next to agent-infra's."""
import pulumi

from components.team import Team                      # this project's own components package
from agent_infra.components import deploy             # the library, under its own import root
from agent_infra.components.config import load_stack_deployment

team = Team("platform")
agent = deploy("bot", load_stack_deployment())
pulumi.export("endpoint", agent.endpoint)
pulumi.export("team", team.owner)
'''

TEAM = '''
import pulumi


class Team(pulumi.ComponentResource):
    """A component of the user's own, in their own `components` package."""

    def __init__(self, name: str) -> None:
        super().__init__("acme:index:Team", name, None)
        self.owner = pulumi.Output.from_input(f"{name}@acme.example")
        self.register_outputs({"owner": self.owner})
'''


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(repo_root)], cwd=out)
    (built,) = out.glob("agent_infra-*.whl")
    return built


@pytest.fixture(scope="module")
def user_project(wheel: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("elsewhere") / "acme-bot"
    program_dir = root / "infra"
    (program_dir / "components").mkdir(parents=True)
    (program_dir / "components" / "__init__.py").write_text('"""acme-bot\'s own components."""\n')
    (program_dir / "components" / "team.py").write_text(TEAM)
    (program_dir / "__main__.py").write_text(PROGRAM)
    (program_dir / "requirements.txt").write_text(f"agent-infra @ {wheel.as_uri()}\n")
    (root / "Pulumi.yaml").write_text(textwrap.dedent("""
        name: acme-bot
        runtime:
          name: python
          options: {toolchain: pip, virtualenv: venv}
        main: infra/
    """))
    for stack, example, topology in STACKS:
        config = yaml.safe_load((repo_root / "stacks" / f"Pulumi.{example}.yaml").read_text())["config"]
        config["agent-infra:deployment"]["topology"] = topology
        # The example's own secrets (`{config: apiKeys}`) live in the project's namespace: acme-bot's here.
        config = {k.replace("agent-infra:", "acme-bot:") if k != "agent-infra:deployment" else k: v
                  for k, v in config.items()}
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    # The Pulumi CLI's bootstrap for `toolchain: pip` (sdk/python/toolchain/pip.go InstallDependencies).
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"], cwd=program_dir, env=env)
    run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=program_dir, env=env)
    return root


def tool(project: Path, name: str) -> str:
    return str(project / "venv" / "bin" / name)


def user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_wheel_holds_one_import_root_with_the_agent_sources_and_the_pack(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("agent_infra-")}
    assert tops == {"agent_infra"}  # never a top-level `components` that would shadow (or be shadowed by) a user's
    for needed in ("agent_infra/agent_app/Dockerfile", "agent_infra/agent_app/lambda_handler.py",
                   "agent_infra/policies/PulumiPolicy.yaml", "agent_infra/policies/__main__.py",
                   "agent_infra/components/aws/queue.py", "agent_infra/offline/runner.py"):
        assert needed in names, needed


def test_the_library_is_the_installed_copy_not_this_checkout(user_project: Path, repo_root: Path) -> None:
    out = run([tool(user_project, "python"), "-c", "import agent_infra.components as c, agent_infra.agent_app as a; "
               "print(c.__file__); print(a.__file__)"], cwd=user_project / "infra", env=user_env()).stdout
    assert str(repo_root) not in out and "site-packages/agent_infra/" in out


@pytest.mark.parametrize("stack", ["aws-serverless", "aws-hybrid"])
def test_cli_preview_and_policy_pass_from_the_users_project(user_project: Path, stack: str) -> None:
    preview = run([tool(user_project, "agent-infra"), "preview", "--project", str(user_project), "--stack", stack,
                   "--json"], cwd=user_project, env=user_env())
    plan = json.loads(preview.stdout)
    assert plan["project"] == "acme-bot" and plan["outputs"]["team"] == "platform@acme.example"
    assert plan["outputs"]["endpoint"]
    policy = run([tool(user_project, "agent-infra"), "policy", "--project", str(user_project), "--stack", stack,
                  "--format", "json"], cwd=user_project, env=user_env())
    report = json.loads(policy.stdout)
    assert not [v for v in report["violations"] if v["level"] == "mandatory"]


def test_every_topology_on_every_cloud_previews_and_passes_policy(user_project: Path) -> None:
    script = textwrap.dedent(f"""
        import json, sys
        from agent_infra.offline import run_project
        from agent_infra.policy_cli import check_plan
        out = {{}}
        for stack in {[s for s, _, _ in STACKS]!r}:
            plan = run_project({str(user_project)!r}, stack)
            report = check_plan(plan)
            out[stack] = [len(plan), report.exit_code,
                          [v.policy for v in report.violations if v.level == "mandatory"]]
        print(json.dumps(out))
    """)
    result = json.loads(run([tool(user_project, "python"), "-c", script], cwd=user_project,
                            env=user_env()).stdout.splitlines()[-1])
    for stack, (resources, exit_code, mandatory) in result.items():
        assert resources > 5 and exit_code == 0 and mandatory == [], (stack, mandatory)


def test_build_bundles_the_installed_agent_app_and_the_plan_deploys_it(user_project: Path) -> None:
    shutil.rmtree(user_project / ".agent-infra", ignore_errors=True)
    run([tool(user_project, "agent-infra"), "build", "--project", str(user_project)], cwd=user_project / "infra",
        env=user_env())
    bundle = user_project / ".agent-infra" / "build" / "lambda-python3.12-arm64.zip"
    names = set(zipfile.ZipFile(bundle).namelist())
    assert "agent_app/lambda_handler.py" in names and "agent_app/Dockerfile" not in names
    assert any(n.startswith("fastapi/") for n in names) and not any(n.startswith("uvicorn/") for n in names)
    plan = json.loads(run([tool(user_project, "agent-infra"), "preview", "--project", str(user_project), "--stack",
                           "aws-serverless", "--json"], cwd=user_project, env=user_env()).stdout)
    codes = [r["inputs"]["code"] for r in plan["resources"] if r["type"] == "aws:lambda/function:Function"]
    assert codes and all(c == {"archive": {"path": str(bundle)}} for c in codes), codes
