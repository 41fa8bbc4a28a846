"""Offline runs: run a Pulumi program (or a callable) under Pulumi's mocks and return what it
would create, with no CLI, no credentials and no network.

The real program and components run through the real Pulumi SDK; only the engine is replaced
by a recording monitor. Use it in your own tests the way CDK users use `assertions`:

    from agent_infra.offline.plan import synthesize
    from agent_infra.components.aws import Queue

    plan = synthesize(lambda: Queue("jobs"))
    queue = plan.one("aws:sqs/queue:Queue", "jobs")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert plan.children(plan.one("agent-infra:aws:Queue", "jobs"))

Each run happens on its own thread with a fresh event loop and fresh Pulumi context (root
stack, config, settings), so runs never leak into each other or into pytest's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import json
import os
import runpy
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config

from . import mock_outputs
from .mocks import PlanMocks, RecordingMonitor
from .plan import Plan


class PlanError(Exception):
    """The program failed; `problems` are the messages to show (no traceback for config errors)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class _TrackingLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Records every event loop created while a plan runs, so all of them can be closed.

    The SDK opens loops of its own (`_ensure_event_loop()` in each RPC worker thread, and the
    executors of those loops open more) and never closes them; each leaks a loop and a socket
    pair per run. Tracking creation is the only way to find them all.
    """

    def __init__(self) -> None:
        super().__init__()
        self.created: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        with self._lock:
            self.created.append(loop)
        return loop

    def close_all(self) -> None:
        with self._lock:
            loops, self.created = list(self.created), []
        for loop in loops:
            if not loop.is_closed() and not loop.is_running():
                loop.close()


class _OfflineSpeedups:
    """Two process-wide SDK behaviours switched off while any plan runs (nested plans
    share one switch; the first one in turns them off, the last one out restores them).

    * The cyclic garbage collector. The SDK allocates several futures, an Output and closures per
      property of every resource, most of them in reference cycles, so the heap grows with the
      program and each automatic full collection re-scans all of it: 14 full passes, 29% of a
      100-agent plan, and the part of its time that grew faster than the program. Paused, the
      plan's garbage waits for the next collection after the plan (one pass, linear).
    * Source positions (``source_positions=False``, the default). For every registration the SDK
      walks the Python stack twice (``traceback.extract_stack``) and turns each frame's file into a
      URI (``Path.as_uri``) for the engine's diagnostics; the mocked engine ignores them and a plan
      records none, and the deeper a component nests the more it costs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._gc_was_enabled = False
        self._stack_trace: Any = None
        self._positions_off = 0

    @contextlib.contextmanager
    def active(self, source_positions: bool) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._gc_was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1
            if not source_positions:
                if self._positions_off == 0:
                    self._stack_trace = sdk_resource._get_stack_trace
                    sdk_resource._get_stack_trace = _no_stack_trace
                self._positions_off += 1
        try:
            yield
        finally:
            with self._lock:
                if not source_positions:
                    self._positions_off -= 1
                    if self._positions_off == 0:
                        sdk_resource._get_stack_trace = self._stack_trace
                self._depth -= 1
                if self._depth == 0 and self._gc_was_enabled:
                    gc.enable()


def _no_stack_trace() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


_SPEEDUPS = _OfflineSpeedups()


def _run_isolated(
    program: Callable[[], Any],
    project: str,
    stack: str,
    config: Mapping[str, Any] | None,
    secret_keys: list[str] | None,
    default_region: str,
    root_directory: Path,
    preview: bool,
    reveal_secrets: bool = False,
) -> Plan:
    import logging

    mocks = PlanMocks(default_region)
    monitor = RecordingMonitor(mocks, reveal_secrets)
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"{record.levelname.lower()}: {record.getMessage()}")

    logger = logging.getLogger(f"agent_infra.plan.{id(monitor)}")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(Collect())

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="agent-infra-plan-rpc")
    loop.set_default_executor(executor)
    try:
        set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()},
                       secret_keys or [])
        pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=preview, logger=logger, monitor=monitor)
        # `--root_directory` of the exec shim: what `pulumi.get_root_directory()` returns.
        settings.SETTINGS.root_directory = str(root_directory)
        settings.ROOT.set(None)  # let run_in_stack create the one stack resource
        from pulumi.runtime.stack import run_in_stack

        loop.run_until_complete(run_in_stack(program))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            executor.shutdown(wait=True)
            loop.close()
            asyncio.set_event_loop(None)
    # Registration order depends on asyncio scheduling; URN order makes plans byte-identical.
    return Plan(project=project, stack=stack, resources=sorted(monitor.registrations, key=lambda r: r.urn),
                outputs=monitor.stack_outputs, log=records)


def synthesize(
    program: Callable[[], Any],
    *,
    project: str = "agent-infra",
    stack: str = "test",
    config: Mapping[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    region: str | None = None,
    root_directory: str | os.PathLike[str] | None = None,
    preview: bool = True,
    reveal_secrets: bool = False,
    source_positions: bool = False,
) -> Plan:
    """Run `program` (a callable that creates resources and may call `pulumi.export`) offline.

    `config` maps full keys (`"agent-infra:deployment"`, `"aws:region"`) to values; non-strings
    are passed as JSON text, as the Pulumi CLI does. `root_directory` is what
    `pulumi.get_root_directory()` returns (default: the working directory); `preview` is
    `pulumi.runtime.is_dry_run()`; `reveal_secrets` keeps secret inputs' values in the plan (for tests that
    start the app with exactly what a platform would hand it; never for output you show). Raises the
    program's own exception on failure.

    While it runs, the cyclic garbage collector is paused and, unless `source_positions=True`,
    the SDK does not compute each registration's source position (see `_OfflineSpeedups`; the
    plan is the same either way).
    """
    root = Path(root_directory or os.getcwd()).resolve()
    default_region = region or str((config or {}).get("aws:region") or mock_outputs.DEFAULT_AWS_REGION)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["plan"] = _run_isolated(program, project, stack, config, secret_keys, default_region, root, preview,
                                           reveal_secrets)
        except BaseException as error:
            result["error"] = error

    previous_policy = asyncio.get_event_loop_policy()
    policy = _TrackingLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    try:
        with _SPEEDUPS.active(source_positions):
            thread = threading.Thread(target=target, name=f"agent-infra-plan-{stack}")
            thread.start()
            thread.join()
    finally:
        policy.close_all()
        asyncio.set_event_loop_policy(previous_policy)
    if "error" in result:
        raise result["error"]
    return result["plan"]


# --- Running a project directory (Pulumi.yaml + Pulumi.<stack>.yaml) ---------------------------

def read_project(project_dir: Path) -> dict[str, Any]:
    import yaml

    for filename in ("Pulumi.yaml", "Pulumi.yml"):
        path = project_dir / filename
        if path.exists():
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as error:
                raise PlanError(f"{path}: not valid YAML: {error}") from None
            if not isinstance(data, dict) or "name" not in data:
                raise PlanError(f"{path}: not a Pulumi project file (no `name`)")
            return data
    raise PlanError(f"{project_dir}: no Pulumi.yaml here; pass --project DIR pointing at a Pulumi project")


def _secure_placeholder(key: str) -> str:
    return f"offline-secret-{key.rsplit(':', 1)[-1]}"


def stack_config(project_dir: Path, project: dict[str, Any], stack: str) -> tuple[dict[str, Any], list[str]]:
    """The config the CLI would hand the program: project defaults, then the stack file.

    `secure:` values cannot be decrypted offline; they become placeholder strings marked secret,
    so the program sees a secret where it expects one and the plan masks it.
    """
    import yaml

    config_dir = project_dir / str(project.get("stackConfigDir") or ".")
    stack_file = config_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        available = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in config_dir.glob("Pulumi.*.yaml"))
        raise PlanError(f"no stack {stack!r}: {stack_file} does not exist"
                        + (f"; stacks here: {', '.join(available)}" if available else ""))
    name = project["name"]
    values: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(decl, dict) and ("default" in decl or "value" in decl):
            values[full] = decl.get("value", decl.get("default"))
        elif not isinstance(decl, dict):
            values[full] = decl
    try:
        data = yaml.safe_load(stack_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise PlanError(f"{stack_file}: not valid YAML: {error}") from None
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full] = _secure_placeholder(full)
            secret_keys.append(full)
        else:
            values[full] = value
    return values, secret_keys


@dataclass(frozen=True)
class ProgramLaunch:
    """How the Pulumi CLI starts a project's Python program (each field: docs/architecture.md)."""

    root: Path
    """The folder holding Pulumi.yaml: `--root_directory`, so `pulumi.get_root_directory()`."""
    pwd: Path
    """The program's working directory: the `main` folder, a `main` file's folder, else the root."""
    program: Path
    """What the exec shim hands `runpy.run_path`: the `main` folder (its `__main__.py` runs) or file."""
    project: str
    """`name` in Pulumi.yaml: the namespace of the project's own config keys."""


def program_launch(project_dir: str | os.PathLike[str]) -> ProgramLaunch:
    """Where the CLI would run this project's program from, and what it would run."""
    root = Path(project_dir).resolve()
    project = read_project(root)
    main = project.get("main")
    target = (root / str(main)).resolve() if main else root
    if not target.exists():
        raise PlanError(f"{root / 'Pulumi.yaml'}: main: {main} does not exist")
    if target.is_dir():
        if not (target / "__main__.py").exists():
            raise PlanError(f"{target}: no __main__.py; the Pulumi CLI runs <main>/__main__.py "
                            f"(Pulumi.yaml main: {main or '(unset: the project folder)'})")
        pwd = target
    else:
        pwd = target.parent
    return ProgramLaunch(root=root, pwd=pwd, program=target, project=str(project["name"]))


def run_project(project_dir: str | os.PathLike[str], stack: str, *, preview: bool = True,
                reveal_secrets: bool = False) -> Plan:
    """Run the Pulumi Python program of `project_dir` with `stack`'s config, offline, as the CLI runs it.

    Working directory, `sys.path`, `sys.argv`, `pulumi.get_root_directory()`, config strings and the
    dry-run flag are those `pulumi preview` gives the program (docs/architecture.md, "How the Pulumi
    CLI runs the program"), so a program that would break under the CLI breaks here first.
    """
    launch = program_launch(project_dir)
    config, secret_keys = stack_config(launch.root, read_project(launch.root), stack)
    region = config.get("aws:region")
    # getPwdMain: a folder runs as "." from inside it, a file by its base name from its folder.
    entry = "." if launch.program.is_dir() else launch.program.name

    def program() -> None:
        saved_path, saved_cwd, saved_argv = list(sys.path), os.getcwd(), list(sys.argv)
        before = set(sys.modules)
        os.chdir(launch.pwd)
        sys.path[:] = exec_shim_sys_path()
        sys.argv[:] = [entry]
        # A fresh interpreter has no finder cached for ".": ours would still point at the folder
        # of the previous run (FileFinder turns "." into the cwd of its creation).
        sys.path_importer_cache.pop(".", None)
        importlib.invalidate_caches()
        try:
            runpy.run_path(entry, run_name="__main__")
        finally:
            sys.path[:] = saved_path
            sys.argv[:] = saved_argv
            os.chdir(saved_cwd)
            _forget_project_modules(launch.root, before)

    return synthesize(program, project=launch.project, stack=stack, config=config, secret_keys=secret_keys,
                      region=str(region) if region else None, root_directory=launch.root, preview=preview,
                      reveal_secrets=reveal_secrets)


@functools.cache
def exec_shim_sys_path() -> list[str]:
    """`sys.path` as the language host's exec shim has it when it calls `runpy.run_path`.

    The shim is started as `python <shim>` and never edits `sys.path`, so it holds the shim's own
    folder (nothing importable) and then the interpreter's default path: PYTHONPATH, the standard
    library, site-packages and `.pth` entries. That default path is read from a fresh interpreter,
    so nothing this process added (its script folder, pytest's rootdir) leaks into the program.
    """
    fresh = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                           capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return [str(_SHIM_FOLDER), *json.loads(fresh.stdout)]


# Stands in for the folder of `pulumi-language-python-exec`: on sys.path, holds no modules.
_SHIM_FOLDER = Path(tempfile.gettempdir()) / "agent-infra-exec-shim"


def _forget_project_modules(root: Path, before: set[str]) -> None:
    """Drop modules the program imported from its own project folder, so the next run (another
    project, maybe with its own `components` package) imports its own, as a new CLI process would."""
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if name.startswith("agent_infra") or not file or "site-packages" in file:
            continue
        if Path(file).resolve().is_relative_to(root):
            del sys.modules[name]
