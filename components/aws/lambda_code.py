"""Where the serverless topology finds its Lambda bundle, and what it says when there is none.

`agent-infra build` writes the bundle (agent_app plus its runtime dependencies as Lambda-platform
wheels) to `.agent-infra/build/`. Preview works without it (the plan shows a source-only bundle
and warns); a real `pulumi up` refuses to deploy a function that could not import its code.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from ..config import DeploymentConfig
from ..errors import ConfigError
from ..paths import agent_app_dir, project_root

BUILD_DIR = Path(".agent-infra") / "build"


def bundle_path(runtime: str, architecture: str, root: Path | None = None) -> Path:
    """Default artifact path for a runtime and architecture, under the project root (Pulumi.yaml's folder)."""
    return (root or project_root()) / BUILD_DIR / f"lambda-{runtime}-{architecture}.zip"


def lambda_code(config: DeploymentConfig) -> pulumi.Archive:
    """The bundle to deploy: `app.code_path`, else the built default artifact."""
    explicit = config.app.code_path is not None
    path = (project_root() / config.app.code_path if config.app.code_path
            else bundle_path(config.app.runtime, config.app.architecture))
    if path.exists():
        return pulumi.FileArchive(str(path))
    build_cmd = f"agent-infra build --runtime {config.app.runtime} --architecture {config.app.architecture}"
    if explicit:
        raise ConfigError(f"deployment.app.code_path: {path} does not exist; build it with `{build_cmd}` or fix the path")
    if not pulumi.runtime.is_dry_run():
        raise ConfigError(f"the Lambda bundle {path} is missing; run `{build_cmd}` before `pulumi up`")
    pulumi.log.warn(f"Lambda bundle {path} not built yet; previewing with agent_app's source only. "
                    f"Run `{build_cmd}` before `pulumi up`.")
    source = agent_app_dir()
    return pulumi.AssetArchive({"agent_app": pulumi.FileArchive(str(source))})
