"""`agent-infra policy`: run the policy pack offline over a stack's plan.

    agent-infra policy --stack dev                         # text, grouped by resource
    agent-infra policy --stack prod --format sarif --output policy.sarif
    agent-infra policy --stack dev --config policy-config.yaml
    agent-infra policy path                                # the pack folder for --policy-pack

Exit codes: 0 no mandatory violation; 1 at least one mandatory violation; 2 the input (stack
config, policy config, flags) is wrong or the program could not run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from agent_infra.policies import PACK_DIR, PACK_NAME
from agent_infra.policies.engine import PolicyConfigError, Rule, evaluate, resolve_config, resources_from_plan
from agent_infra.policies.report import Report, render

from .console import build_plan


class Format(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"


app = typer.Typer(
    name="policy",
    help="Check a stack against the policy pack offline (no Pulumi CLI, no credentials).",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _error(message: str) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(2)


def load_policy_config(path: Path) -> dict[str, Any]:
    """A policy config file (JSON or YAML) shaped like the Pulumi CLI's `--policy-pack-config`."""
    import yaml

    try:
        text = path.read_text()
    except OSError as error:
        raise PolicyConfigError(f"{path}: cannot read ({error.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise PolicyConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: must map policy names to settings, got {type(data).__name__}")
    return data


def check_plan(plan: Any, config: Mapping[str, Any] | None = None, rules: Sequence[Rule] | None = None,
               location: str | None = None) -> Report:
    """Evaluate `rules` (default: every policy) over an offline plan (`agent_infra.offline.Plan`)."""
    from agent_infra.policies.rules import ALL_RULES

    rules = list(rules if rules is not None else ALL_RULES)
    resolved = resolve_config(rules, config)
    resources = resources_from_plan(plan)
    violations = evaluate(rules, resources, config)
    return Report(project=plan.project, stack=plan.stack, rules=rules,
                  levels={name: entry["enforcementLevel"] for name, entry in resolved.items()},
                  violations=violations, resource_count=sum(1 for r in plan.resources if r.custom),
                  location=location)


def _stack_file(project: Path, stack: str) -> str | None:
    """The stack's config file relative to the working directory (where CI uploads SARIF from)."""
    try:
        import yaml

        data = yaml.safe_load((project / "Pulumi.yaml").read_text()) or {}
        path = (project / str(data.get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml").resolve()
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, ValueError, AttributeError):
        return None


@app.callback(invoke_without_command=True)
def policy(
    ctx: typer.Context,
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Stack name: reads Pulumi.<stack>.yaml.")] = None,
    project: Annotated[Path, typer.Option("--project", "-C", file_okay=False,
                                          help="Pulumi project directory (has Pulumi.yaml).")] = Path("."),
    output_format: Annotated[Format, typer.Option("--format", "-f", help="text, json, sarif or junit.")] = Format.text,
    config: Annotated[Path | None, typer.Option("--config", "-c", dir_okay=False,
                                                help="Policy config (JSON/YAML), as for --policy-pack-config: "
                                                     "{policy: {enforcementLevel: advisory, ...settings}}.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", dir_okay=False,
                                                help="Write the report here too (stdout gets the text summary).")] = None,
    traceback: Annotated[bool, typer.Option("--traceback", help="Show Python tracebacks of program errors.")] = False,
) -> None:
    """Check a stack against the policy pack offline; exit 1 on any mandatory violation."""
    if ctx.invoked_subcommand is not None:
        return
    if not stack:
        raise _error("missing --stack NAME (the stack whose Pulumi.<stack>.yaml to check)")
    try:
        policy_config = load_policy_config(config) if config else {}
        from agent_infra.policies.rules import ALL_RULES

        resolve_config(ALL_RULES, policy_config)
    except PolicyConfigError as error:
        raise _error(f"invalid policy config{f' {config}' if config else ''}:\n  "
                     + str(error).replace("\n", "\n  ")) from None

    # Exit 1 means a mandatory violation here, so a program that cannot run is exit 2.
    plan = build_plan(project, stack, traceback, program_error_code=2)

    report = check_plan(plan, policy_config, location=_stack_file(project, stack))
    rendered = render(report, output_format.value)
    if output is not None:
        output.write_text(rendered)
        sys.stdout.write(render(report, "text"))
    else:
        sys.stdout.write(rendered)
    raise typer.Exit(report.exit_code)


@app.command("path")
def path() -> None:
    """Print the installed pack's folder: pulumi preview --policy-pack "$(agent-infra policy path)"."""
    sys.stdout.write(f"{PACK_DIR}\n")


@app.command("list")
def list_policies(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List every policy: id, default level, area and what it checks."""
    from agent_infra.policies.rules import ALL_RULES

    if as_json:
        sys.stdout.write(json.dumps([{"name": r.name, "level": r.level, "area": r.area, "kind": r.kind,
                                      "description": r.description, "remediation": r.remediation,
                                      "config": {k: v.get("default") for k, v in r.config.items()}}
                                     for r in ALL_RULES], indent=2) + "\n")
        return
    for r in ALL_RULES:
        sys.stdout.write(f"{r.name:38} {r.level:9} {r.area:13} {r.description}\n")
    sys.stdout.write(f"{len(ALL_RULES)} policies in pack {PACK_NAME!r}\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
