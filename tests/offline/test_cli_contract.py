"""The offline runner runs a program exactly as the Pulumi CLI's Python language host does.

Each test pins one behaviour documented in docs/architecture.md ("How the Pulumi CLI runs the
program", with the Pulumi source file and function it comes from); the program under test reports
what it sees, and the test compares that with what the CLI would give it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent_infra.offline import PlanError, program_launch, run_project

PROBE = """
import json, os, sys
import pulumi
cfg = pulumi.Config()
pulumi.export("cwd", os.getcwd())
pulumi.export("root", pulumi.get_root_directory())
pulumi.export("sys_path", json.dumps(sys.path))
pulumi.export("argv", json.dumps(sys.argv))
pulumi.export("dry_run", pulumi.runtime.is_dry_run())
pulumi.export("obj_raw", cfg.get("obj"))
pulumi.export("num_raw", cfg.get("num"))
pulumi.export("file", __file__)
"""


def project(tmp_path: Path, main: str | None, program_at: str, name: str = "probe") -> Path:
    root = tmp_path / "proj"
    (root / program_at).parent.mkdir(parents=True, exist_ok=True)
    (root / program_at).write_text(PROBE)
    lines = [f"name: {name}", "runtime: python"] + ([f"main: {main}"] if main else [])
    (root / "Pulumi.yaml").write_text("\n".join(lines) + "\n")
    (root / "Pulumi.t.yaml").write_text("config:\n  probe:obj: {a: 1, b: [x]}\n  probe:num: 5\n")
    return root


def fresh_interpreter_path() -> list[str]:
    out = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                         capture_output=True, text=True, check=True, cwd="/")
    return json.loads(out.stdout)


@pytest.mark.parametrize(("main", "program_at", "pwd"), [
    ("stacks/", "stacks/__main__.py", "stacks"),   # getPwdMain: a folder is the pwd, entry "."
    ("app/main.py", "app/main.py", "app"),          # a file: its folder is the pwd, entry its base name
    (None, "__main__.py", "."),                      # unset: the project folder, entry "."
])
def test_working_directory_root_and_argv_are_the_clis(tmp_path, main, program_at, pwd):
    root = project(tmp_path, main, program_at)
    plan = run_project(root, "t")
    assert plan.outputs["cwd"] == str((root / pwd).resolve())
    assert plan.outputs["root"] == str(root.resolve())            # --root_directory = Pulumi.yaml's folder
    entry = "." if program_at.endswith("__main__.py") else Path(program_at).name
    assert json.loads(plan.outputs["argv"]) == [entry]             # sys.argv = [PROGRAM] + ARGS


def test_sys_path_is_the_exec_shims(tmp_path, repo_root):
    root = project(tmp_path, "stacks/", "stacks/__main__.py")
    seen = json.loads(run_project(root, "t").outputs["sys_path"])
    # runpy.run_path(".") puts the program folder first; then the shim's own folder; then exactly a
    # fresh interpreter's path. Nothing of this process (pytest's rootdir, tests/) leaks in.
    assert seen[0] == "."
    assert seen[2:] == fresh_interpreter_path()
    assert str(repo_root) not in seen and str(repo_root / "tests") not in seen


def test_config_arrives_as_the_cli_hands_it_strings_and_json_text(tmp_path):
    plan = run_project(project(tmp_path, None, "__main__.py"), "t")
    assert plan.outputs["num_raw"] == "5"                                  # every value a string
    assert json.loads(plan.outputs["obj_raw"]) == {"a": 1, "b": ["x"]}     # objects as JSON text


def test_preview_is_a_dry_run_and_up_is_not(tmp_path):
    root = project(tmp_path, None, "__main__.py")
    assert run_project(root, "t").outputs["dry_run"] is True
    assert run_project(root, "t", preview=False).outputs["dry_run"] is False


def test_a_program_relying_on_the_project_folder_as_cwd_fails_as_under_the_cli(tmp_path):
    root = tmp_path / "proj"
    (root / "stacks").mkdir(parents=True)
    (root / "data.txt").write_text("hello")
    (root / "stacks" / "__main__.py").write_text("open('data.txt').read()\n")
    (root / "Pulumi.yaml").write_text("name: p\nruntime: python\nmain: stacks/\n")
    (root / "Pulumi.t.yaml").write_text("config: {}\n")
    with pytest.raises(FileNotFoundError):
        run_project(root, "t")


def test_missing_main_folder_program_is_named(tmp_path):
    root = tmp_path / "proj"
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text("name: p\nruntime: python\nmain: stacks/\n")
    with pytest.raises(PlanError, match=r"no __main__.py"):
        program_launch(root)


def own_components_project(root: Path, marker: str) -> Path:
    (root / "components").mkdir(parents=True)
    (root / "components" / "__init__.py").write_text(f"MARKER = {marker!r}\n")
    (root / "Pulumi.yaml").write_text(f"name: {root.name}\nruntime: python\n")
    (root / "Pulumi.t.yaml").write_text("config: {}\n")
    (root / "__main__.py").write_text(textwrap.dedent("""
        import pulumi
        import components                                   # the project's own package
        from agent_infra.components.aws import Queue         # ours, under its own import root
        Queue("jobs")
        pulumi.export("marker", components.MARKER)
    """))
    return root


def test_a_projects_own_components_package_and_ours_coexist_and_never_leak_between_runs(tmp_path):
    first = run_project(own_components_project(tmp_path / "one", "first"), "t")
    second = run_project(own_components_project(tmp_path / "two", "second"), "t")
    assert (first.outputs["marker"], second.outputs["marker"]) == ("first", "second")
    assert second.one("aws:sqs/queue:Queue", "jobs")
