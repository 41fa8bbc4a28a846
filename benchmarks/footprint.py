"""Install size, install time and import time of the package, from a wheel, in fresh virtualenvs.

    python benchmarks/footprint.py [--extras ",app"] [--runs 5]

Builds the wheel once (``pip wheel . --no-deps``), then for each extra (empty = the base package,
components only) makes a fresh venv in a temp dir, installs ``<wheel>[extra]`` (pip's cache is
used as any user's would be, so the install time is mostly unpacking), and prints:

* installed size of the venv's site-packages and the number of distributions in it;
* import time of the entry points, median over ``--runs`` fresh interpreters (the first run,
  which writes the .pyc files, is not counted): ``import agent_infra.components`` and the cloud packages for
  the base install, ``import agent_infra.agent_app.api.app`` and ``agent_infra.agent_app.lambda_handler`` for ``[app]``.

``--extras ",app,dev"`` also measures the development environment (large: pulumi providers, moto,
pgserver, mypy). The Lambda cold start (import + first request beside bare Mangum + FastAPI) is
``benchmarks/lambda_import_time.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_env import banner  # noqa: E402

IMPORTS: dict[str, list[str]] = {
    "": ["components", "agent_infra.components.aws", "agent_infra.components.gcp", "agent_infra.components.kubernetes", "agent_infra.offline"],
    "app": ["components", "agent_infra.agent_app.api.app", "agent_infra.agent_app.lambda_handler"],
    "dev": ["agent_infra.agent_app.api.app"],
}


def du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            p = Path(root, name)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def import_ms(python: Path, module: str, runs: int) -> float:
    """Median wall time of ``import module`` in fresh interpreters (start-up itself excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    samples = []
    for i in range(runs + 1):
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(),
                             check=True, timeout=300)
        if i:  # the first run compiles and writes the .pyc files
            samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", default=",app", help="comma-separated extras; empty = base package")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(banner("footprint: installed size and import time", packages=("pip", "setuptools")))
    tmp = Path(tempfile.mkdtemp(prefix="agent-bench-footprint-"))
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(ROOT), "--no-deps", "-w", str(tmp / "wheel")],
                       check=True, capture_output=True, timeout=600)
        wheel = next((tmp / "wheel").glob("*.whl"))
        print(f"wheel: {wheel.name}, {wheel.stat().st_size / 1024:.0f} KiB\n")
        print(f"{'install':<22}{'size MB':>9}{'dists':>7}{'install s':>11}   import ms (median of {args.runs})")
        for extra in args.extras.split(","):
            venv = tmp / f"venv-{extra or 'base'}"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            python = venv / "bin" / "python"
            spec = f"{wheel}[{extra}]" if extra else str(wheel)
            started = time.perf_counter()
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
                           check=True, capture_output=True, timeout=1800)
            install_s = time.perf_counter() - started
            site = next((venv / "lib").glob("python*/site-packages"))
            pip_self = sum(du(p) for p in site.glob("pip*"))  # pip itself comes with every venv
            size_mb = (du(site) - pip_self) / 2**20
            dists = len([p for p in site.glob("*.dist-info") if not p.name.startswith("pip-")])
            imports = ", ".join(f"{m} {import_ms(python, m, args.runs):.0f}" for m in IMPORTS.get(extra, []))
            label = f"agent-infra[{extra}]" if extra else "agent-infra"
            print(f"{label:<22}{size_mb:>9.0f}{dists:>7}{install_s:>11.1f}   {imports}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
