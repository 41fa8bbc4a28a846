"""`agent-infra cost` and the budget-covers-fixed-cost policy, over the example stacks' plans."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from agent_infra.policies.cost import HOURS, PRICES, Usage, estimate
from agent_infra.policies.engine import resources_from_plan

from agent_infra.offline import run_project
from agent_infra.policy_cli import check_plan

CLI = [sys.executable, "-m", "agent_infra.cli"]


def cli(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})


@pytest.mark.parametrize("stack", ["dev", "prod", "k8s", "local", "gcp"])
def test_cost_json_gives_a_total_for_every_example_stack(repo_root, stack):
    result = cli("cost", "--stack", stack, "--json", cwd=repo_root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["currency"] == "USD" and report["prices_as_of"]
    assert report["total_monthly"] >= report["fixed_monthly"] >= 0
    assert abs(sum(r["total"] for r in report["resources"]) - report["total_monthly"]) < 0.05 * len(report["resources"]) + 0.01


def test_the_prod_floor_is_what_its_network_and_minimums_cost(repo_root):
    result = estimate(resources_from_plan(run_project(repo_root, "prod")))
    nats = [line for line in result.lines if line.type == "aws:ec2/natGateway:NatGateway"]
    assert len(nats) == 3 and all(line.fixed == pytest.approx(PRICES["aws.nat_gateway_hour"] * HOURS) for line in nats)
    endpoints = [line for line in result.lines if line.type == "aws:ec2/vpcEndpoint:VpcEndpoint"]
    assert endpoints and all(line.fixed == pytest.approx(PRICES["aws.interface_endpoint_az_hour"] * HOURS * 3)
                             for line in endpoints)
    db = next(line for line in result.lines if line.type == "aws:rds/cluster:Cluster")
    assert db.fixed == pytest.approx(2 * 0.5 * PRICES["aws.aurora_serverless_acu_hour"] * HOURS)  # 2 instances, 0.5 ACU
    assert result.budget_usd == 1500 and result.fixed > 400


def test_usage_moves_the_usage_part_not_the_floor(repo_root):
    resources = resources_from_plan(run_project(repo_root, "dev"))
    low, high = estimate(resources, Usage(tasks_per_day=1_000)), estimate(resources, Usage(tasks_per_day=10_000))
    assert low.fixed == high.fixed
    assert high.total - high.fixed > 5 * (low.total - low.fixed)


def test_a_bad_usage_file_names_the_key(repo_root, tmp_path):
    usage = tmp_path / "usage.yaml"
    usage.write_text("tasks_per_dya: 10\n")
    result = cli("cost", "--stack", "dev", "--usage", str(usage), cwd=repo_root)
    assert result.returncode == 2 and "unknown key(s) tasks_per_dya" in result.stderr
    usage.write_text("tasks_per_day: -3\n")
    result = cli("cost", "--stack", "dev", "--usage", str(usage), cwd=repo_root)
    assert result.returncode == 2 and "usage.tasks_per_day: must be a number >= 0" in result.stderr


def test_a_budget_below_the_fixed_floor_is_flagged(tmp_path, repo_root):
    import yaml

    config = yaml.safe_load((repo_root / "stacks" / "Pulumi.prod.yaml").read_text())["config"]
    config["agent-infra:deployment"]["budget"]["monthly_limit_usd"] = 100
    (tmp_path / "Pulumi.yaml").write_text("name: agent-infra\nruntime: python\n")
    (tmp_path / "Pulumi.cheap.yaml").write_text(yaml.safe_dump({"config": config}))
    (tmp_path / "__main__.py").write_text((repo_root / "stacks" / "__main__.py").read_text())
    flagged = [v for v in check_plan(run_project(tmp_path, "cheap")).violations if v.policy == "budget-covers-fixed-cost"]
    assert len(flagged) == 1 and "$100.00/month" in flagged[0].message
    assert not [v for v in check_plan(run_project(repo_root, "prod")).violations
                if v.policy == "budget-covers-fixed-cost"]
