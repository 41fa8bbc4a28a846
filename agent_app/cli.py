"""``agent-app``: serve the API (with an embedded worker), run a worker, inspect the DLQ."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Annotated

import typer

from .settings import Settings

app = typer.Typer(help="The agent service.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
dlq_app = typer.Typer(help="Dead-lettered tasks: list and replay.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

log = logging.getLogger("agent_app")

_BANNER = "!" * 78

# uvicorn.run() options of `agent-app serve`, shared with benchmarks/accept_wrk.py so the bare
# baseline runs under exactly the same server settings.
UVICORN_OPTIONS: dict[str, object] = {"ws_ping_interval": 20}


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (AGENT_BIND_HOST). Default 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (AGENT_PORT). Default 8000.")] = None,
    worker: Annotated[bool, typer.Option(help="Run an in-process worker (embedded default).")] = True,
    log_level: str = "info",
) -> None:
    """Run the HTTP/WebSocket API. With no configuration: SQLite, in-process queue, offline model."""
    import uvicorn

    from .api.app import create_app
    from .wiring import build

    _logging(log_level)
    overrides: dict[str, object] = {}
    if host:
        overrides["bind_host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    keys = settings.api_key_set()
    loopback = settings.is_loopback_bind()
    if not keys:
        if not loopback or settings.environment != "dev":
            typer.echo(
                f"refusing to start: no API keys and bound to {settings.bind_host} in {settings.environment}. "
                "Set AGENT_API_KEYS (comma-separated) or bind to 127.0.0.1 in dev.",
                err=True,
            )
            raise typer.Exit(2)
        typer.echo(
            f"{_BANNER}\n!! WARNING: NO AUTHENTICATION. Anyone who can reach {settings.bind_host}:{settings.port} "
            f"can run the agent.\n!! Fine on loopback for local use; set AGENT_API_KEYS before exposing it.\n{_BANNER}",
            err=True,
        )
    container = build(settings)
    if settings.queue_backend == "memory" and not worker:
        typer.echo("note: the in-process queue needs the embedded worker; keeping it on", err=True)
        worker = True
    api = create_app(container, embedded_worker=worker, allow_anonymous=not keys and loopback)
    typer.echo(
        f"agent-app on http://{settings.bind_host}:{settings.port} (queue={settings.queue_backend}, "
        f"state={settings.state_backend}, db={settings.sqlalchemy_url.split('://')[0]}, llm={settings.llm_provider})",
        err=True,
    )
    uvicorn.run(api, host=settings.bind_host, port=settings.port, log_level=log_level, **UVICORN_OPTIONS)  # type: ignore[arg-type]


@app.command("worker")
def worker_cmd(
    concurrency: Annotated[int | None, typer.Option(help="Parallel tasks (AGENT_WORKER_CONCURRENCY).")] = None,
    health_port: Annotated[
        int | None,
        typer.Option(help="Serve /healthz and /readyz on this port (AGENT_WORKER_HEALTH_PORT; 0 = any free port)."),
    ] = None,
    health_host: Annotated[str, typer.Option(help="Address of the health endpoint.")] = "0.0.0.0",
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes under one supervisor, one consumer group (AGENT_WORKER_PROCESSES). Default 1.",
        ),
    ] = None,
    log_level: str = "info",
) -> None:
    """Run a standalone queue worker (SIGTERM: finish or hand back in-flight tasks, then exit)."""
    from .wiring import build
    from .worker import run_worker

    _logging(log_level)
    overrides: dict[str, object] = {"worker_concurrency": concurrency} if concurrency else {}
    if processes:
        overrides["worker_processes"] = processes
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.queue_backend == "memory":
        typer.echo("agent-app worker needs a shared queue: set AGENT_QUEUE_BACKEND=redis (or sqs)", err=True)
        raise typer.Exit(2)
    port = health_port if health_port is not None else settings.worker_health_port

    async def main() -> None:
        if settings.worker_processes > 1:
            from .supervisor import run_supervisor

            await run_supervisor(
                settings,
                settings.worker_processes,
                overrides=overrides,
                log_level=log_level,
                health_port=port,
                health_host=health_host,
            )
            return
        await run_worker(build(settings), health_port=port, health_host=health_host)

    asyncio.run(main())


@dlq_app.command("list")
def dlq_list(
    limit: int = 100,
    principal: Annotated[str | None, typer.Option(help="Only this principal's tasks.")] = None,
) -> None:
    """Print dead-lettered tasks as JSON lines (every principal's unless --principal)."""
    from .wiring import build

    async def main() -> None:
        container = build()
        try:
            for task in await container.queue.dead_letters(limit):
                if principal is not None and task.principal != principal:
                    continue
                typer.echo(
                    json.dumps(
                        {
                            "task_id": task.id,
                            "session_id": task.session_id,
                            "principal": task.principal,
                            "attempts": task.attempts,
                            "message": task.message[:200],
                        }
                    )
                )
        finally:
            await container.close()

    asyncio.run(main())


@dlq_app.command("replay")
def dlq_replay(
    task_id: Annotated[str | None, typer.Argument(help="One task id; omit with --all to replay every task.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead-lettered task.")] = False,
) -> None:
    """Move dead-lettered task(s) back to the queue."""
    from .wiring import build

    if not task_id and not all_:
        typer.echo("give a task id or --all", err=True)
        raise typer.Exit(2)

    async def main() -> int:
        container = build()
        try:
            return await container.queue.replay(None if all_ else task_id)
        finally:
            await container.close()

    typer.echo(f"replayed {asyncio.run(main())} task(s)")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"agent-app {version('agent-infra')}")
        except PackageNotFoundError:
            typer.echo("agent-app (not installed)")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                  help="Print the version and exit.")] = False) -> None:
    """The agent service: API, workers, dead-letter tools."""


def _setting_name(loc: tuple[object, ...]) -> str:
    """`('queue_backend',)` -> `AGENT_QUEUE_BACKEND`, the variable a user sets (or its flag)."""
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    alias = getattr(info.validation_alias, "choices", None) if info else None
    name = str(alias[0]) if alias else f"AGENT_{field.upper()}"
    flag = {"port": "--port", "bind_host": "--host", "worker_processes": "--processes"}.get(field)
    return f"{name} (or {flag})" if flag else name


def main() -> None:
    """Console-script entry point: operator mistakes and unreachable services are one line, no traceback."""
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:  # a setting from the environment or a flag
        for item in exc.errors(include_url=False):
            got = f", got {item['input']!r}" if "input" in item else ""
            typer.echo(f"error: {_setting_name(tuple(item['loc']))}: {item['msg']}{got}", err=True)
        sys.exit(2)
    except RuntimeError as exc:  # configuration errors (ConfigurationError): one line
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        kind = type(exc).__module__.split(".")[0]
        if kind in ("redis", "botocore", "asyncpg", "sqlalchemy") or isinstance(exc, OSError):
            typer.echo(f"error: a backend is unreachable ({kind} {type(exc).__name__}): {exc}", err=True)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
