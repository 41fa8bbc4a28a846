"""The preview says which values the offline engine invented."""

from __future__ import annotations

import os
import subprocess
import sys

from agent_infra.offline import run_project
from agent_infra.render import render

CLI = [sys.executable, "-m", "agent_infra.cli"]


def test_invented_outputs_are_marked_and_the_programs_own_values_are_not(repo_root):
    plan = run_project(repo_root, "dev")
    marked = set(plan.to_dict()["placeholders"]["outputs"])
    assert {"endpoint", "queue_url", "dlq_url", "websocket_endpoint", "alarm_topic_arn"} <= marked
    assert not {"worker_function", "api_function", "dashboard_url"} & marked  # names the program chose
    resources = plan.to_dict()["resources"]
    worker = next(r for r in resources if r["type"] == "aws:lambda/function:Function" and r["name"] == "agent-worker")
    assert "environment.variables.AGENT_QUEUE_URL" in worker["placeholder_inputs"]
    assert "environment.variables.AGENT_ENVIRONMENT" not in worker["placeholder_inputs"]
    assert all(r["outputs_are_placeholders"] == r["custom"] for r in resources)


def test_the_tree_marks_placeholders(repo_root):
    result = subprocess.run([*CLI, "preview", "--stack", "dev"], cwd=repo_root, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    queue_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("queue_url"))
    assert "placeholder" in queue_line
    worker_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("worker_function"))
    assert "placeholder" not in worker_line
    assert "invented offline" in result.stdout


def test_rendered_manifests_warn_about_a_placeholder_image(repo_root, tmp_path):
    paths = render(run_project(repo_root, "k8s"), tmp_path)
    warned = [p.name for p in paths if p.read_text().startswith("# WARNING: image")]
    assert sorted(warned) == sorted(p.name for p in paths if "-deployment-agent-" in p.name)
