"""Schemathesis, every check, over the OpenAPI document of the running server (real HTTP), with
keys configured and without (loopback dev). Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.app.test_api import KEY, serve

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.slow
@pytest.mark.parametrize("keys", [True, False], ids=["with-keys", "no-keys"])
def test_schemathesis_all_checks_find_nothing(tmp_path: Path, keys: bool) -> None:
    binary = shutil.which("schemathesis") or shutil.which("st")
    if binary is None:
        pytest.fail("schemathesis not found: pip install -e '.[dev]'")
    overrides = {"rate_limit_per_minute": 1_000_000, "auth_failures_per_minute": 1_000_000}
    with serve(tmp_path, None, api_keys=KEY if keys else None, **overrides) as srv:
        command = [
            binary, "--config-file", str(CONFIG), "run", f"{srv.url}/openapi.json",
            "--checks", "all", "--max-examples", "25", "--workers", "1", "--seed", "1", "--request-timeout", "20",
        ]
        if keys:
            command += ["-H", f"X-API-Key: {KEY}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
