"""Offline plan: run a Pulumi program (or a callable) under Pulumi's mocks and return what it
would create, with no CLI, no credentials and no network.

The real program and components run through the real Pulumi SDK; only the engine is replaced
by a recording monitor. Use it in your own tests the way CDK users use `assertions`:

    from components.plan import synthesize
    from components.aws import Queue

    plan = synthesize(lambda: Queue("jobs"))
    queue = plan.one("aws:sqs/queue:Queue", "jobs")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert plan.children(plan.one("agent-infra:aws:Queue", "jobs"))

Each run happens on its own thread with a fresh event loop and fresh Pulumi context (root
stack, config, settings), so runs never leak into each other or into pytest's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config

from components import mock_outputs

SECRET_MASK = "[secret]"
UNKNOWN_MARK = "<computed>"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class PlannedResource:
    """One registered resource, as the engine would have seen it."""

    type: str
    """Type token, e.g. `aws:sqs/queue:Queue` or `agent-infra:aws:Queue`."""
    name: str
    """Logical name."""
    urn: str
    parent: str | None
    """URN of the parent (a component or the stack)."""
    provider: str | None
    """URN of the explicit provider, if one was passed."""
    custom: bool
    """True for cloud resources, False for components."""
    inputs: dict[str, Any]
    """Inputs in the provider's camelCase, secrets masked as `[secret]`, unknowns `<computed>`."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Registered outputs (components) or the mocked provider outputs (custom resources)."""
    id: str | None = None
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    aliases: list[str] = field(default_factory=list)
    secret_paths: list[str] = field(default_factory=list)
    """Dotted input paths whose values were secret (masked in `inputs`)."""

    def get(self, path: str, default: Any = None) -> Any:
        """Input at a dotted path: `res.get("redrivePolicy")`, `res.get("tags.environment")`."""
        value: Any = self.inputs
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return default
        return value


@dataclass
class Plan:
    """Every resource a program registers, in order, and the stack outputs."""

    project: str
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    log: list[str] = field(default_factory=list)
    """Warnings and errors the program logged."""

    def __iter__(self) -> Iterator[PlannedResource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        """All resources of one type token."""
        return [r for r in self.resources if r.type == type_token]

    def find(self, name: str | None = None, type_token: str | None = None) -> list[PlannedResource]:
        """Resources matching a logical name and/or a type token."""
        return [r for r in self.resources
                if (name is None or r.name == name) and (type_token is None or r.type == type_token)]

    def one(self, type_token: str, name: str | None = None) -> PlannedResource:
        """Exactly one resource of that type (and name); raises `LookupError` otherwise."""
        found = self.find(name, type_token)
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_token))
            raise LookupError(f"expected one {type_token}{' named ' + name if name else ''}, found {len(found)}"
                              f" (of this type: {names})")
        return found[0]

    def by_urn(self, urn: str) -> PlannedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(f"no resource with URN {urn}")

    def children(self, parent: PlannedResource | str, recursive: bool = False) -> list[PlannedResource]:
        """Direct children of a component (or every descendant with `recursive=True`)."""
        parent_urn = parent if isinstance(parent, str) else parent.urn
        direct = [r for r in self.resources if r.parent == parent_urn]
        if not recursive:
            return direct
        out = []
        for child in direct:
            out.append(child)
            out.extend(self.children(child, recursive=True))
        return out

    def custom_resources(self) -> list[PlannedResource]:
        """Cloud resources only (no components)."""
        return [r for r in self.resources if r.custom]

    def count_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack, "outputs": self.outputs,
                "resources": [asdict(r) for r in self.resources], "log": self.log}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)


def _asset_json(value: Any) -> dict[str, Any]:
    """Assets and archives as JSON: where their content comes from, not the content."""
    from pulumi import asset

    if isinstance(value, asset.AssetArchive):
        return {"archive": {"assets": {k: _asset_json(v) for k, v in value.assets.items()}}}
    if isinstance(value, asset.FileArchive | asset.RemoteArchive | asset.FileAsset | asset.RemoteAsset):
        kind = "archive" if isinstance(value, asset.Archive) else "asset"
        return {kind: {"path" if hasattr(value, "path") else "uri": getattr(value, "path", getattr(value, "uri", None))}}
    if isinstance(value, asset.StringAsset):
        return {"asset": {"text": value.text}}
    return {"asset": {"repr": type(value).__name__}}


def _plain(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Deserialized RPC value -> plain JSON, masking secrets and marking unknowns."""
    from pulumi import asset

    if isinstance(value, asset.Asset | asset.Archive):
        return _asset_json(value)
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            secret_paths.append(path)
            return SECRET_MASK
        if value.get(rpc._special_sig_key) == rpc._special_archive_sig:
            return {"archive": {k: v for k, v in value.items() if k != rpc._special_sig_key}}
        if value.get(rpc._special_sig_key) == rpc._special_asset_sig:
            return {"asset": {k: v for k, v in value.items() if k != rpc._special_sig_key}}
        return {k: _plain(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()
                if not k.startswith("__")}
    if isinstance(value, list):
        return [_plain(v, f"{path}.{i}", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return UNKNOWN_MARK
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unwrap_secrets(value: Any) -> Any:
    """Same value with secret wrappers removed, for the mocks to compute outputs from."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


class PlanMocks(pulumi_mocks.Mocks):
    """Deterministic provider outputs and invoke answers (see `components.mock_outputs`)."""

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region
        self.provider_regions: dict[str, str] = {}

    def region_for(self, provider_ref: str | None) -> str:
        if provider_ref:
            urn = provider_ref.split("::" + provider_ref.rsplit("::", 1)[-1])[0] if provider_ref.count("::") > 3 else provider_ref
            for key, region in self.provider_regions.items():
                if provider_ref.startswith(key) or urn.startswith(key):
                    return region
        return self.default_region

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = _unwrap_secrets(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", args.inputs
        region = inputs.get("region") if isinstance(inputs.get("region"), str) else self.region_for(args.provider)
        outputs = mock_outputs.resource_outputs(args.typ, args.name, inputs, region)
        # Echo the original (possibly secret-wrapped) inputs so secrets stay secret downstream.
        for key, value in args.inputs.items():
            outputs[key] = value
        return mock_outputs.resource_id(args.typ, args.name, outputs), outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        given = args.args.get("region")
        region = given if isinstance(given, str) else self.region_for(args.provider)
        return mock_outputs.invoke_result(args.token, _unwrap_secrets(args.args), region)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, plus a record of every registration's options and outputs."""

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.plan_mocks = mocks
        self.registrations: list[PlannedResource] = []
        self.by_urn: dict[str, PlannedResource] = {}
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn: str | None = None

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            self.stack_urn = response.urn
            return response
        secret_paths: list[str] = []
        raw_inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        if request.type.startswith("pulumi:providers:"):
            region = _unwrap_secrets(raw_inputs).get("region")
            if isinstance(region, str):
                self.plan_mocks.provider_regions[response.urn] = region
        registered = self.resources.get(response.urn)
        outputs: dict[str, Any] = {}
        if request.custom and registered is not None:
            outputs = _plain(_unwrap_secrets(registered.state), "", [])
            for key in list(outputs):
                if key in raw_inputs:
                    outputs.pop(key)  # keep only what the provider computed
        resource = PlannedResource(
            type=request.type,
            name=request.name,
            urn=response.urn,
            parent=request.parent or None,
            provider=request.provider.split("::" + request.provider.rsplit("::", 1)[-1])[0]
            if request.provider else None,
            custom=bool(request.custom),
            inputs=_plain(raw_inputs, "", secret_paths),
            outputs=outputs,
            id=response.id or None,
            dependencies=sorted(set(request.dependencies)),
            protect=bool(request.protect),
            aliases=[a.urn for a in request.aliases if a.urn] if hasattr(request, "aliases") else [],
            secret_paths=secret_paths,
        )
        if resource.provider and resource.provider.startswith("urn:") is False:
            resource.provider = None
        self.registrations.append(resource)
        self.by_urn[resource.urn] = resource
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        secret_paths: list[str] = []
        outputs = _plain(rpc.deserialize_properties(request.outputs, keep_unknowns=True), "", secret_paths)
        if request.urn == self.stack_urn:
            self.stack_outputs = outputs
        elif request.urn in self.by_urn:
            self.by_urn[request.urn].outputs = outputs
        return super().RegisterResourceOutputs(request)


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


def _run_isolated(
    program: Callable[[], Any],
    project: str,
    stack: str,
    config: Mapping[str, Any] | None,
    secret_keys: list[str] | None,
    default_region: str,
) -> Plan:
    import logging

    mocks = PlanMocks(default_region)
    monitor = RecordingMonitor(mocks)
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
        pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=True, logger=logger, monitor=monitor)
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
) -> Plan:
    """Run `program` (a callable that creates resources and may call `pulumi.export`) offline.

    `config` maps full keys (`"agent-infra:deployment"`, `"aws:region"`) to values; non-strings
    are passed as JSON text, as the Pulumi CLI does. Raises the program's own exception on failure.
    """
    default_region = region or str((config or {}).get("aws:region") or mock_outputs.DEFAULT_AWS_REGION)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["plan"] = _run_isolated(program, project, stack, config, secret_keys, default_region)
        except BaseException as error:
            result["error"] = error

    previous_policy = asyncio.get_event_loop_policy()
    policy = _TrackingLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    try:
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


def run_project(project_dir: str | os.PathLike[str], stack: str) -> Plan:
    """Run the Pulumi Python program of `project_dir` with `stack`'s config, offline."""
    root = Path(project_dir).resolve()
    project = read_project(root)
    config, secret_keys = stack_config(root, project, stack)
    main = root / str(project.get("main") or ".")
    entry = main / "__main__.py" if main.is_dir() else main
    if not entry.exists():
        raise PlanError(f"{entry}: the project's program was not found (Pulumi.yaml main: {project.get('main')})")
    region = config.get("aws:region")

    def program() -> None:
        saved_path, saved_cwd = list(sys.path), os.getcwd()
        sys.path[:0] = [str(entry.parent), str(root)]
        os.chdir(root)  # the CLI runs programs from the project directory
        try:
            runpy.run_path(str(entry), run_name="__main__")
        finally:
            sys.path[:] = saved_path
            os.chdir(saved_cwd)

    return synthesize(program, project=project["name"], stack=stack, config=config,
                      secret_keys=secret_keys, region=str(region) if region else None)
