"""The README's Python examples run as written (offline), so the front page never lies."""

from __future__ import annotations

import re

from agent_infra.offline import synthesize


def python_blocks(repo_root) -> list[str]:
    text = (repo_root / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_component_example_previews(repo_root):
    program = next(b for b in python_blocks(repo_root) if "ServerlessAgent(" in b)
    plan = synthesize(lambda: exec(program, {"__name__": "__main__"}), project="my-agents", stack="dev")
    assert plan.outputs["endpoint"].startswith("https://")
    assert plan.one("aws:sqs/queue:Queue", "audit-events").inputs["delaySeconds"] == 10
    assert plan.one("agent-infra:topology:ServerlessAgent", "support-bot")


def test_testing_example_passes(repo_root):
    block = next(b for b in python_blocks(repo_root) if "def test_" in b)
    namespace: dict = {}
    exec(block, namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        test()
