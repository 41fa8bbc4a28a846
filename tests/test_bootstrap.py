"""`pulumi up` on a fresh clone bootstraps a working program, the way the Pulumi CLI does it.

For `toolchain: pip` with `virtualenv: .venv` the CLI (sdk/python/toolchain/pip.go,
InstallDependencies; virtualenv path resolved against the project root) runs, in order:
`python -m venv <root>/.venv`, `<venv>/bin/python -m pip install --upgrade pip setuptools wheel`,
then `<venv>/bin/python -m pip install -r requirements.txt` with the *program directory*
(`main: stacks/`) as working directory. This test performs exactly those steps in a fresh
virtualenv and then runs every example stack with that interpreter, as the CLI would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_clis_pip_bootstrap_of_this_project_gives_an_interpreter_that_runs_every_stack(repo_root, tmp_path):
    project = yaml.safe_load((repo_root / "Pulumi.yaml").read_text())
    options = project["runtime"]["options"]
    assert options["toolchain"] == "pip"
    program_dir = repo_root / project["main"]
    assert (program_dir / "requirements.txt").exists(), "the CLI reads requirements.txt from the program directory"
    # A fresh virtualenv stands in for <root>/.venv (CI's own .venv already exists there).
    venv = tmp_path / Path(options["virtualenv"]).name
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    run([sys.executable, "-m", "venv", str(venv)], cwd=repo_root, env=env)
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"], cwd=program_dir, env=env)
    run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=program_dir, env=env)
    stacks = sorted(p.name.split(".")[1] for p in program_dir.glob("Pulumi.*.yaml"))
    script = textwrap.dedent(f"""
        import pulumi_aws, pulumi_gcp, pulumi_kubernetes  # the program's providers, from the bootstrap
        from agent_infra.offline import run_project
        for stack in {stacks!r}:
            plan = run_project({str(repo_root)!r}, stack)
            print(stack, len(plan))
    """)
    out = run([python, "-c", script], cwd=program_dir, env=env).stdout.split()
    counts = dict(zip(out[::2], map(int, out[1::2]), strict=True))
    assert set(counts) == set(stacks) and all(n > 10 for n in counts.values()), counts
