"""What every `agent-infra` command shares: plain-when-piped output, one-line errors, running a plan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from agent_infra.components.errors import ConfigError

from .offline import PlanError, run_project


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped output is for grep and diff: no wrapping of long type tokens.
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 200)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise."""
    # The message is the user's text (config paths like `x[0]`, values): printed as is, never as markup.
    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", markup=True)
    return typer.Exit(code)


def build_plan(project: Path, stack: str, traceback: bool = False, program_error_code: int = 1) -> Any:
    """Run the project's program offline; turn user mistakes into clean errors (no traceback)."""

    try:
        return run_project(project, stack)
    except ConfigError as error:
        lines = "\n".join(f"  {line}" for line in error.problems)
        what = f"invalid config for stack {stack!r}" if error.origin == "stack" else "invalid component arguments"
        raise fail(f"{what}:\n{lines}") from None
    except PlanError as error:
        raise fail(str(error)) from None
    except Exception as error:
        if traceback:
            raise
        raise fail(f"the Pulumi program of {project} failed for stack {stack!r}: {type(error).__name__}: {error}\n"
                   "  rerun with --traceback to see where", code=program_error_code) from None


