"""The README's Python examples run as written, in a project outside this repository, and pass policy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "agent_infra.cli"]
STACK = """config:
  agent-infra:deployment:
    cloud: aws
    topology: serverless
    environment: dev
    budget: {monthly_limit_usd: 30, emails: [ops@example.com]}
"""


def python_blocks() -> list[str]:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


PROGRAMS = [b for b in python_blocks() if "def test_" not in b]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})


@pytest.mark.parametrize("program", PROGRAMS, ids=[f"block{i}" for i in range(len(PROGRAMS))])
def test_readme_program_previews_and_passes_policy_in_a_project_elsewhere(program, tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: my-agents\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK)
    (tmp_path / "__main__.py").write_text(program)
    preview = cli("preview", "--stack", "dev", "--json", cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    plan = json.loads(preview.stdout)
    assert plan["outputs"]["endpoint"].startswith("https://")
    policy = cli("policy", "--stack", "dev", "--format", "json", cwd=tmp_path)
    assert policy.returncode == 0, policy.stdout + policy.stderr
    assert not [v for v in json.loads(policy.stdout)["violations"] if v["level"] == "mandatory"]


def test_the_escape_hatch_example_does_what_it_says(tmp_path):
    from agent_infra.offline import synthesize

    program = next(b for b in PROGRAMS if "ServerlessAgent(" in b)
    plan = synthesize(lambda: exec(program, {"__name__": "__main__"}), project="my-agents", stack="dev")
    assert plan.one("aws:sqs/queue:Queue", "audit-events").inputs["delaySeconds"] == 10
    assert plan.one("agent-infra:topology:ServerlessAgent", "support-bot")


def test_testing_example_passes():
    block = next(b for b in python_blocks() if "def test_" in b)
    namespace: dict = {}
    exec(block, namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        test()


def test_the_readme_lists_every_doc_page():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    for page in sorted((root / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README's documentation list misses docs/{page.name}"
    for picture in sorted((root / "docs" / "diagrams").glob("*.png")):
        assert f"diagrams/{picture.name}" in (root / "docs" / "topologies.md").read_text()
