"""Where things are, without ever asking the working directory.

Under the Pulumi CLI the program's working directory is its `main` folder (`stacks/` here), not
the project folder, and a user's project may sit anywhere. So project-relative paths resolve
from `pulumi.get_root_directory()` (the folder of Pulumi.yaml) and the agent's own sources from
the installed `agent_infra.agent_app` package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pulumi

from .errors import ConfigError


def project_root() -> Path:
    """The folder holding Pulumi.yaml of the running program (`pulumi.get_root_directory()`)."""
    try:
        root = pulumi.get_root_directory()
    except Exception:  # an SDK outside a program run has no settings yet
        root = None
    if not root or not Path(root).is_absolute():  # unset settings answer a placeholder string
        raise ConfigError("no Pulumi project root: run inside a Pulumi program (`pulumi up`, `agent-infra preview`)"
                          " or pass an absolute path")
    return Path(root)


def find_project_root(start: Path) -> Path:
    """The nearest folder holding Pulumi.yaml, from `start` upwards (for commands run outside a program)."""
    here = start.resolve()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").exists() or (directory / "Pulumi.yml").exists():
            return directory
    raise ConfigError(f"no Pulumi.yaml in {here} or any folder above it; pass --project DIR")


def agent_app_dir() -> Path:
    """The installed agent service package (a wheel's `agent_infra/agent_app`, or a checkout's `agent_app/`)."""
    spec = importlib.util.find_spec("agent_infra.agent_app")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("agent_infra.agent_app is not importable: install agent-infra (pip install agent-infra)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def agent_image_context() -> Path:
    """Docker build context of the agent image: the folder holding the installed `agent_app/`,
    so `agent_app/Dockerfile` and its COPY sources are the installed ones, wherever the program runs."""
    return agent_app_dir().parent
