"""`agent-infra`: preview a stack offline, print the config schema, check policies, render, build.

Exit codes: 0 success; 1 the program or a check failed; 2 the input (config, stack, flags) is wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from .console import build_plan, console, fail
from .policy_cli import app as policy_app

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


def _version(value: bool) -> None:
    if value:
        from agent_infra import __version__

        typer.echo(f"agent-infra {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                  help="Print the version and exit.")] = False) -> None:
    """Deploy AI-agent services with Pulumi: offline preview, policy checks, manifests, bundles."""


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
    out = console()
    out.print(_resource_tree(plan))
    counts = Table(title="Resources by type", show_edge=False)
    counts.add_column("type")
    counts.add_column("count", justify="right")
    for type_token, count in plan.count_by_type().items():
        counts.add_row(type_token, str(count))
    out.print(counts)
    custom = len(plan.custom_resources())
    out.print(f"{len(plan)} resources ({custom} cloud resources, {len(plan) - custom} components)")
    placeholders = plan.placeholder_paths()
    invented = {path.split(".")[0] for path in placeholders.get("outputs", [])}
    outputs = Table(title="Outputs", show_edge=False)
    outputs.add_column("name")
    outputs.add_column("value")
    outputs.add_column("")
    for key, value in sorted(plan.outputs.items()):
        outputs.add_row(key, value if isinstance(value, str) else json.dumps(value),
                        "[yellow]placeholder[/]" if key in invented else "")
    out.print(outputs)
    if placeholders:
        inputs = sum(len(paths) for urn, paths in placeholders.items() if urn != "outputs")
        out.print(f"[yellow]placeholder[/]: invented offline (account 123456789012, ids, ARNs, endpoints, digests); "
                  f"{inputs} resource inputs use such values too (`--json`: \"placeholders\", \"placeholder_inputs\"). "
                  "`pulumi up` gives the real ones.")
    for line in plan.log:
        out.print(f"[yellow]{escape(line)}[/]")


@app.command()
def schema(
    deployment_only: Annotated[bool, typer.Option("--deployment-only",
                                                  help="Only the `deployment` value, not the whole stack file.")] = False,
) -> None:
    """Print the JSON Schema of Pulumi.<stack>.yaml, for editor completion and validation."""
    from agent_infra.components.config import DeploymentConfig, stack_file_schema

    document = DeploymentConfig.model_json_schema() if deployment_only else stack_file_schema()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


app.add_typer(policy_app, name="policy")


@app.command()
def render(
    stack: StackOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the manifests (created if missing).",
                                      file_okay=False)],
    project: ProjectOption = Path("."),
) -> None:
    """Write the stack's Kubernetes objects as YAML manifests, one file per object (offline)."""
    from .render import render as render_manifests

    plan = build_plan(project, stack)
    paths = render_manifests(plan, out)
    if not paths:
        raise fail(f"stack {stack!r} has no Kubernetes objects (cloud is not kubernetes?)")
    typer.echo(f"wrote {len(paths)} manifests to {out}")
    for path in paths:
        if path.read_text().startswith("# WARNING: image"):
            typer.echo(f"warning: {path.name}: its image reference is a placeholder invented offline; build and push "
                       "the image or pin app.image before `kubectl apply`", err=True)


@app.command()
def diagram(
    stack: StackOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture to write: FILE.png or FILE.svg.", dir_okay=False)],
    project: ProjectOption = Path("."),
) -> None:
    """Draw the stack's architecture from its plan (cloud icons; needs Graphviz's `dot`)."""
    import importlib.util
    import shutil

    from .diagram import draw

    if out.suffix.lower() not in (".png", ".svg"):
        raise fail(f"--out: {out.name}: the picture is .png or .svg")
    if importlib.util.find_spec("diagrams") is None:
        raise fail("the `diagrams` package is not installed: pip install 'agent-infra[diagram]'")
    if shutil.which("dot") is None:
        raise fail("Graphviz is not installed (no `dot` on PATH): apt-get install graphviz, brew install graphviz")
    plan = build_plan(project, stack)
    typer.echo(f"wrote {draw(plan, out)}")


@app.command()
def cost(
    stack: StackOption,
    project: ProjectOption = Path("."),
    usage: Annotated[Path | None, typer.Option("--usage", "-u", dir_okay=False,
                                               help="Usage profile (YAML/JSON): requests_per_day, tasks_per_day, "
                                                    "task_seconds, gb_stored, ... (defaults: a small production agent).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
) -> None:
    """Estimate the stack's monthly cost per resource, and compare it with the stack's budget."""
    import yaml

    from agent_infra.policies.cost import PRICES_AS_OF, Usage, estimate
    from agent_infra.policies.engine import resources_from_plan

    profile = Usage()
    if usage is not None:
        try:
            raw = yaml.safe_load(usage.read_text()) or {}
            if not isinstance(raw, dict):
                raise ValueError("usage: must be a mapping of settings")
            profile = Usage.from_mapping(raw)
        except (OSError, yaml.YAMLError, ValueError) as error:
            raise fail(f"{usage}: {error}") from None
    result = estimate(resources_from_plan(build_plan(project, stack)), profile)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    out = console()
    table = Table(title=f"Monthly cost estimate, USD (list prices as of {PRICES_AS_OF})", show_edge=False)
    for column in ("resource", "fixed", "usage", "total", "how"):
        table.add_column(column, justify="right" if column in ("fixed", "usage", "total") else "left")
    for line in result.lines:
        if line.total >= 0.005:
            table.add_row(f"{line.name} [dim]{line.type}[/]", f"{line.fixed:,.2f}", f"{line.usage:,.2f}",
                          f"{line.total:,.2f}", line.basis)
    out.print(table)
    out.print(f"fixed floor ${result.fixed:,.2f}/month (no traffic); total ${result.total:,.2f}/month at "
              f"{profile.requests_per_day:,} requests and {profile.tasks_per_day:,} tasks a day")
    if result.budget_usd is not None:
        verdict = ("covers the estimate" if result.budget_usd >= result.total else
                   "covers the fixed floor but not the estimate" if result.budget_usd >= result.fixed else
                   "is below the fixed floor: it will alarm every month")
        out.print(f"budget ${result.budget_usd:,.2f}/month {verdict}")
    for note in result.notes:
        out.print(f"[yellow]note: {escape(note)}[/]")


@app.command()
def build(
    runtime: Annotated[str, typer.Option(help="Lambda runtime (python3.11, python3.12, python3.13).")] = "python3.12",
    architecture: Annotated[str, typer.Option(help="arm64 (Graviton, cheaper) or x86_64.")] = "arm64",
    out: Annotated[Path | None, typer.Option(help="Output directory. Default: <project>/.agent-infra/build")] = None,
    project: ProjectOption = Path("."),
    upgrade: Annotated[bool, typer.Option(help="Re-resolve versions instead of the pinned .lock.")] = False,
) -> None:
    """Build the Lambda bundle: agent_app + runtime wheels for the Lambda platform, reproducible zip."""
    from agent_infra.components.errors import ConfigError

    from . import lambda_bundle

    try:
        bundle = lambda_bundle.build_bundle(runtime, architecture, out_dir=out, project=project, upgrade=upgrade)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    mb = 1024 * 1024
    typer.echo(f"built {bundle.path}")
    typer.echo(f"  size    {bundle.zipped_bytes / mb:.2f} MB zipped, {bundle.unzipped_bytes / mb:.2f} MB unzipped, "
               f"{bundle.files} files ({len(bundle.requirements)} packages)")
    typer.echo(f"  sha256  {bundle.sha256}")
    typer.echo(f"  limits  {bundle.zipped_bytes / lambda_bundle.ZIPPED_LIMIT_BYTES:.0%} of 50 MB zipped, "
               f"{bundle.unzipped_bytes / lambda_bundle.UNZIPPED_LIMIT_BYTES:.0%} of 250 MB unzipped")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
