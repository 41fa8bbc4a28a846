"""agent_app/Dockerfile, read with BuildKit's own parser (the `dockerfile` package wraps the Go
parser docker uses): no role-blind health check, hash-locked dependencies in a layer only the lock
invalidates, root-owned code, a non-root user, and a context limited to agent_app/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dockerfile
import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "agent_app" / "Dockerfile"
LOCK = ROOT / "agent_app" / "requirements.lock"


@pytest.fixture(scope="module")
def stages() -> list[list[Any]]:
    out: list[list[Any]] = []
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            out.append([])
        out[-1].append(command)
    return out


def test_no_image_health_check(stages: list[list[Any]]) -> None:
    # One image runs the API and the worker; a check probing the API port marks every worker unhealthy.
    assert not [c for stage in stages for c in stage if c.cmd == "HEALTHCHECK"]


def test_dependency_layer_depends_on_the_lock_only_and_checks_hashes(stages: list[list[Any]]) -> None:
    deps = stages[1]
    copies = [c.value for c in deps if c.cmd in ("COPY", "ADD")]
    assert copies == [("agent_app/requirements.lock", "/tmp/requirements.lock")]  # no README, no pyproject
    install = next(c.value[0] for c in deps if c.cmd == "RUN" and "pip install" in c.value[0])
    assert "--require-hashes" in install and "--no-deps" in install and "requirements.lock" in install


def test_lock_pins_every_distribution_with_hashes() -> None:
    text = LOCK.read_text()
    requirements = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    pins = dict(re.match(r"^([A-Za-z0-9._-]+)==(\S+) \\$", line).groups() for line in requirements)  # type: ignore[union-attr]
    hashed = re.findall(r"^([A-Za-z0-9._-]+)==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M)
    assert sorted(hashed) == sorted(pins), "a pinned distribution without a hash"
    wanted = {re.split(r"[<>=\[ ]", line)[0].lower().replace("_", "-")
              for line in (ROOT / "agent_app" / "requirements.in").read_text().splitlines()
              if line and not line.startswith("#")}
    assert wanted <= set(pins), f"requirements.in not locked: {sorted(wanted - set(pins))}"


def test_code_is_root_owned_and_the_runtime_user_is_not_root(stages: list[list[Any]]) -> None:
    final = stages[-1]
    code = next(c for c in final if c.cmd == "COPY" and c.value[0] == "agent_app")
    assert code.flags == ("--chown=0:0",)
    user = [c.value[0] for c in final if c.cmd == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    after_user = final[[c.cmd for c in final].index("USER"):]
    assert not [c for c in after_user if c.cmd in ("COPY", "ADD", "RUN")]  # nothing written as the runtime user


def test_context_is_limited_to_the_package() -> None:
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split("\n")
    patterns = [line for line in ignore if line and not line.startswith("#")]
    # BuildKit uses <Dockerfile>.dockerignore beside the Dockerfile; last match wins.
    assert patterns[:2] == ["*", "!agent_app/"]
    assert "agent_app/**/__pycache__" in patterns
