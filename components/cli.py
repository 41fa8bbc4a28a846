"""`agent-infra`: preview a stack offline, print the config schema, check policies, render, build.

Exit codes: 0 success; 1 the program or a check failed; 2 the input (config, stack, flags) is wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from components.errors import ConfigError

app = typer.Typer(
    name="agent-infra",
    help="Deploy AI-agent services with Pulumi: offline preview, policy checks, manifests, bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name: reads Pulumi.<stack>.yaml.")]
ProjectOption = Annotated[Path, typer.Option("--project", "-C", help="Pulumi project directory (has Pulumi.yaml).",
                                             file_okay=False)]


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped output is for grep and diff: no wrapping of long type tokens.
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 200)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise."""
    _console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code)


def build_plan(project: Path, stack: str, traceback: bool = False) -> Any:
    """Run the project's program offline; turn user mistakes into clean errors (no traceback)."""
    from components.plan import PlanError, run_project

    try:
        return run_project(project, stack)
    except ConfigError as error:
        lines = "\n".join(f"  {line}" for line in error.problems)
        raise fail(f"invalid config for stack {stack!r}:\n{lines}") from None
    except PlanError as error:
        raise fail(str(error)) from None
    except Exception as error:
        if traceback:
            raise
        raise fail(f"the Pulumi program of {project} failed for stack {stack!r}: {type(error).__name__}: {error}\n"
                   "  rerun with --traceback to see where", code=1) from None


def _resource_tree(plan: Any) -> Tree:
    """Component -> children, components first, then by name (stable across runs)."""
    root = Tree(f"[bold]{plan.project}[/]/{plan.stack}")
    known = {r.urn for r in plan.resources}
    children: dict[str | None, list[Any]] = {}
    for resource in plan.resources:
        parent = resource.parent if resource.parent in known else None
        children.setdefault(parent, []).append(resource)

    def add(node: Tree, parent: str | None) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.custom, r.name, r.type)):
            name = f"[bold cyan]{resource.name}[/]" if not resource.custom else resource.name
            add(node.add(f"{name} [dim]{resource.type}[/]"), resource.urn)

    add(root, None)
    return root


@app.command()
def preview(
    stack: StackOption,
    project: ProjectOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole plan as JSON.")] = False,
    traceback: Annotated[bool, typer.Option("--traceback", help="Show Python tracebacks of program errors.")] = False,
) -> None:
    """Show what a stack would create, offline: no Pulumi CLI, no credentials, no network."""
    plan = build_plan(project, stack, traceback)
    if as_json:
        sys.stdout.write(plan.to_json() + "\n")
        return
    console = _console()
    console.print(_resource_tree(plan))
    counts = Table(title="Resources by type", show_edge=False)
    counts.add_column("type")
    counts.add_column("count", justify="right")
    for type_token, count in plan.count_by_type().items():
        counts.add_row(type_token, str(count))
    console.print(counts)
    custom = len(plan.custom_resources())
    console.print(f"{len(plan)} resources ({custom} cloud resources, {len(plan) - custom} components)")
    outputs = Table(title="Outputs", show_edge=False)
    outputs.add_column("name")
    outputs.add_column("value")
    for key, value in sorted(plan.outputs.items()):
        outputs.add_row(key, value if isinstance(value, str) else json.dumps(value))
    console.print(outputs)
    for line in plan.log:
        console.print(f"[yellow]{line}[/]")


@app.command()
def schema(
    deployment_only: Annotated[bool, typer.Option("--deployment-only",
                                                  help="Only the `deployment` value, not the whole stack file.")] = False,
) -> None:
    """Print the JSON Schema of Pulumi.<stack>.yaml, for editor completion and validation."""
    from components.config import DeploymentConfig, stack_file_schema

    document = DeploymentConfig.model_json_schema() if deployment_only else stack_file_schema()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


app.add_typer(__import__("policies.cli").cli.app, name="policy")  # owned by policies/cli.py
app.command("render")(__import__("components.kubernetes.render").kubernetes.render.render_command)  # owned by components/kubernetes/render.py
app.command("build")(__import__("components.aws.lambda_bundle").aws.lambda_bundle.build_command)  # owned by components/aws/lambda_bundle.py


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
