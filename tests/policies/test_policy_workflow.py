"""The CI workflow users copy: its shape, and its stack-listing script run for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "policy.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the `on` key as a boolean
    return data


def _steps(job: dict[str, Any]) -> str:
    return "\n".join(json.dumps(step) for step in job["steps"])


def test_offline_job_needs_no_credentials_and_uploads_sarif(workflow: dict[str, Any]) -> None:
    assert {"pull_request", "workflow_call"} <= set(workflow["on"])
    offline = workflow["jobs"]["offline"]
    steps = _steps(offline)
    assert "agent-infra policy" in steps and "--format sarif" in steps and "--format junit" in steps
    assert "github/codeql-action/upload-sarif" in steps
    assert offline["permissions"]["security-events"] == "write"
    assert "secrets." not in steps and "id-token" not in offline["permissions"]


def test_preview_job_runs_the_pack_only_with_credentials(workflow: dict[str, Any]) -> None:
    preview = workflow["jobs"]["preview"]
    assert "vars.AWS_ROLE_ARN != ''" in preview["if"] and "head.repo.full_name" in preview["if"]
    steps = _steps(preview)
    assert '--policy-pack \\"$(agent-infra policy path)\\"' in steps
    assert "configure-aws-credentials" in steps


def test_stack_listing_script_finds_every_example_stack(workflow: dict[str, Any], tmp_path: Path) -> None:
    assert shutil.which("jq"), "install jq (GitHub runners have it) to run the workflow's stack-listing script"
    (step,) = [s for s in workflow["jobs"]["stacks"]["steps"] if s.get("id") == "list"]
    output = tmp_path / "out"
    env = {**os.environ, "PROJECT_DIR": ".", "REQUESTED": "", "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-euo", "pipefail", "-c", step["run"]], cwd=REPO, env=env, check=True, timeout=60)
    stacks = json.loads(output.read_text().strip().removeprefix("stacks="))
    assert stacks == sorted(p.name[7:-5] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))


def test_docs_describe_every_policy_with_its_level() -> None:
    from agent_infra.policies.rules import ALL_RULES

    docs = (REPO / "docs" / "policies.md").read_text()
    for rule in ALL_RULES:
        heading = f"#### {rule.name}\n\n*{rule.level}*, {rule.kind} policy. {rule.description}"
        assert heading in docs, f"docs/policies.md: describe {rule.name} (regenerate the policy list)"


def test_docs_policy_config_example_is_valid() -> None:
    from agent_infra.policies.engine import resolve_config
    from agent_infra.policies.rules import ALL_RULES

    docs = (REPO / "docs" / "policies.md").read_text()
    example = docs.split("# policy-config.yaml\n", 1)[1].split("```", 1)[0]
    resolved = resolve_config(ALL_RULES, yaml.safe_load(example))
    assert resolved["container-read-only-root-fs"]["enforcementLevel"] == "disabled"
    assert resolved["required-tags"] == {"enforcementLevel": "mandatory",
                                         "requiredTags": ["project", "stack", "environment", "owner"]}
