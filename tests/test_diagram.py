"""`agent-infra diagram`: every example stack as a picture drawn from its plan."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from agent_infra.diagram import parts, uses
from agent_infra.offline import run_project

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
STACKS = ["dev", "prod", "k8s", "local", "gcp"]


@pytest.mark.parametrize("stack", STACKS)
def test_diagram_writes_a_png_and_a_self_contained_svg(repo_root, tmp_path, stack):
    for suffix in ("png", "svg"):
        out = tmp_path / f"{stack}.{suffix}"
        result = subprocess.run([sys.executable, "-m", "agent_infra.cli", "diagram", "--stack", stack, "--out", str(out)],
                                cwd=repo_root, capture_output=True, text=True, timeout=180, env={**os.environ})
        assert result.returncode == 0, result.stderr
        data = out.read_bytes()
        if suffix == "png":
            assert data.startswith(b"\x89PNG") and len(data) > 10_000
        else:
            text = data.decode()
            assert "<svg" in text and "data:image/png;base64," in text
            assert 'href="/' not in text  # no icon left pointing into this machine's site-packages


def test_the_dev_picture_shows_the_request_and_task_flow(repo_root):
    plan = run_project(repo_root, "dev")
    drawn = {p.urn: p.label for p in parts(plan)}
    edges = {(drawn[a], drawn[b]) for a, b in uses(plan, parts(plan))}
    assert {("agent-http", "agent-api"), ("agent-api", "agent-tasks"), ("agent-worker", "agent-tasks"),
            ("agent-worker", "agent-sessions"), ("agent-tasks", "agent-tasks-dlq")} <= edges


def test_kubernetes_parts_linked_by_name_and_backend(repo_root):
    plan = run_project(repo_root, "k8s")
    drawn = {p.urn: p.label for p in parts(plan)}
    edges = {(drawn[a], drawn[b]) for a, b in uses(plan, parts(plan))}
    assert {("agent-api", "agent-redis"), ("agent-worker", "agent-redis"), ("agent-worker", "agent-postgres")} <= edges


def test_a_wrong_suffix_is_refused(repo_root, tmp_path):
    result = subprocess.run([sys.executable, "-m", "agent_infra.cli", "diagram", "--stack", "dev", "--out",
                             str(tmp_path / "x.jpg")], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "the picture is .png or .svg" in result.stderr
