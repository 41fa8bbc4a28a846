"""The shape of the code: one import root, tooling apart from the library, no cloud borrowing from another."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOUDS = ("aws", "gcp", "kubernetes", "docker")


def imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in a file; absolute imports have level 0."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
        elif isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
    return found


def test_no_cloud_folder_imports_a_sibling_cloud():
    for cloud in CLOUDS:
        for path in (ROOT / "components" / cloud).glob("*.py"):
            for level, module in imports(path):
                others = [c for c in CLOUDS if c != cloud]
                borrowed = (level == 2 and module.split(".")[0] in others) or any(
                    module.startswith(f"agent_infra.components.{c}") for c in others)
                assert not borrowed, f"{path.relative_to(ROOT)} imports {'.' * level}{module}"


def test_the_library_never_imports_the_tooling():
    for folder in ("components", "policies", "agent_app"):
        for path in (ROOT / folder).rglob("*.py"):
            for level, module in imports(path):
                assert not module.startswith(("agent_infra.offline", "agent_infra.cli", "agent_infra.console")), (
                    f"{path.relative_to(ROOT)} imports {module}")
                assert not (level == 0 and module.split(".")[0] in ("components", "policies", "agent_app")), (
                    f"{path.relative_to(ROOT)}: `import {module}` would pick up a user's own package of that name; "
                    "import relatively or from agent_infra.*")


def test_every_package_folder_is_in_the_distribution():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapping = {"components": "agent_infra.components", "agent_app": "agent_infra.agent_app",
               "policies": "agent_infra.policies", "agent_infra": "agent_infra"}
    on_disk = set()
    for folder, name in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([name, *rel.parts]))
    assert on_disk == declared
