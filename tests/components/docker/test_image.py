"""AgentImage: content tags that ignore unrelated files, pushes pinned by digest."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from agent_infra.components.docker import AgentImage, AgentImageArgs, content_hash
from agent_infra.components.errors import ConfigError

from agent_infra.offline import synthesize

DOCKERFILE = """FROM python:3.12-slim
COPY pyproject.toml ./
COPY --chown=10001 agent_app/ /app/agent_app/
COPY --from=deps /install /usr/local
"""


@pytest.fixture()
def context(tmp_path: Path) -> Path:
    (tmp_path / "agent_app" / "__pycache__").mkdir(parents=True)
    (tmp_path / "agent_app" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "agent_app" / "core.py").write_text("x = 1\n")
    (tmp_path / "agent_app" / "__pycache__" / "core.pyc").write_bytes(b"\0")
    (tmp_path / "agent_app" / "notes.tmp").write_text("scratch")
    (tmp_path / ".dockerignore").write_text("**/*.tmp\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# guide\n")
    return tmp_path


def test_tag_ignores_files_the_image_does_not_copy(context: Path) -> None:
    before = content_hash(context)
    (context / "docs" / "guide.md").write_text("# changed\n")
    (context / "agent_app" / "__pycache__" / "core.pyc").write_bytes(b"\1")
    (context / "agent_app" / "notes.tmp").write_text("changed")
    assert content_hash(context) == before


@pytest.mark.parametrize("edit", ["agent_app/core.py", "pyproject.toml", "agent_app/Dockerfile"])
def test_tag_changes_with_what_the_image_copies(context: Path, edit: str) -> None:
    before = content_hash(context)
    path = context / edit
    path.write_text(path.read_text() + "\n# edit\n")
    assert content_hash(context) != before


def test_build_args_and_platform_are_part_of_the_tag(context: Path) -> None:
    assert content_hash(context, extra={"platform": "linux/arm64"}) != content_hash(
        context, extra={"platform": "linux/amd64"})


def test_missing_dockerfile_is_an_actionable_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"app.image: no Dockerfile at .*agent_app/Dockerfile \(build context .*\); fix image.context.* or set app.image to a pinned image"):
        content_hash(tmp_path)


def test_pushed_image_is_pinned_by_digest_with_secret_credentials(context: Path) -> None:
    def program() -> None:
        image = AgentImage("agent", AgentImageArgs(repository="ghcr.io/acme/agent-app", context=str(context),
                                                   registry_username="acme",
                                                   registry_password=pulumi.Output.secret("token")))
        pulumi.export("ref", image.image_ref)

    plan = synthesize(program)
    image = plan.one("docker-build:index:Image", "agent")
    tag = "c-" + content_hash(context, extra={"build_args": {}, "platform": "linux/arm64"})[:12]
    assert image.inputs["tags"] == [f"ghcr.io/acme/agent-app:{tag}"]
    assert image.inputs["platforms"] == ["linux/arm64"]
    assert image.inputs["push"] is True and image.inputs["registries"] == "[secret]"
    assert image.inputs["cacheFrom"] == [{"registry": {"ref": "ghcr.io/acme/agent-app:buildcache"}}]
    assert plan.outputs["ref"].startswith("ghcr.io/acme/agent-app@sha256:")


def test_local_image_is_loaded_not_pushed(context: Path) -> None:
    plan = synthesize(lambda: pulumi.export("ref", AgentImage(
        "agent", {"repository": "agent-app", "context": str(context), "push": False}).image_ref))
    image = plan.one("docker-build:index:Image", "agent")
    assert (image.inputs["push"], image.inputs["load"]) == (False, True)
    assert "cacheTo" not in image.inputs
    assert plan.outputs["ref"] == image.inputs["tags"][0]


def test_latest_tag_is_refused(context: Path) -> None:
    with pytest.raises(ConfigError, match=r"image\.tag: latest is not reproducible"):
        synthesize(lambda: AgentImage("agent", {"repository": "r", "context": str(context), "tag": "latest"}))
