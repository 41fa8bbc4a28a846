"""Start the real agent_app exactly as a plan configures a workload, against local stand-ins.

What comes from the plan: the command (`agent-app ...`, run as the image runs it: `python -m
agent_app.cli`), every environment variable, every secret reference and every mounted file. What
the harness changes, each a stand-in for the platform and listed in `StandIns`: addresses
(a service name like `agent-redis:6379` -> the local server's `127.0.0.1:port`, the listening
ports -> free ports), where mounted files live (`AGENT_SECRETS_DIR`), and callbacks to a local
receiver over http (`AGENT_CALLBACK_ALLOW_PRIVATE`). Nothing else is added: a variable the app
needs and the plan does not set makes the flow fail; a variable the plan sets and the app ignores
fails `assert_app_reads_everything`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from agent_infra.offline import Plan, run_project

REPO_ROOT = Path(__file__).resolve().parents[2]

LIBRARY_VARS = {
    "PGPASSWORD": "libpq and asyncpg read the database password from it when the URL has none",
    "TMPDIR": "Python's tempfile writes there (the read-only root filesystem's writable /tmp)",
}
"""Variables the plan may set that agent_app's settings do not read but a library it uses does."""


@functools.cache
def revealed_plan(stack: str) -> Plan:
    """The stack's offline plan with secret values kept (the offline placeholders of `secure:`
    config, e.g. `offline-secret-agent-infra:apiKeys`): the values the platform would hand the app."""
    return run_project(REPO_ROOT, stack, reveal_secrets=True)


@dataclass
class Workload:
    """One container (or function) as the plan defines it."""

    name: str
    command: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    """File name -> content, mounted at `mount_path`."""
    mount_path: str | None = None


def settings_env_names() -> dict[str, str]:
    """Env var name -> Settings field, as pydantic-settings reads them."""
    from agent_infra.agent_app.settings import Settings
    from pydantic import AliasChoices

    names: dict[str, str] = {}
    for field_name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update({str(choice): field_name for choice in alias.choices})
        else:
            names[f"AGENT_{field_name.upper()}"] = field_name
    return names


def _same(value: Any, raw: str) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return value == (raw.lower() in ("1", "true", "yes", "on"))
    if isinstance(value, int | float):
        return float(raw) == float(value)
    if isinstance(value, list):
        return value == json.loads(raw)
    return str(value) == raw


def assert_app_reads_everything(workload: Workload) -> None:
    """Every variable and file the plan gives the workload is a setting the app reads, with the
    plan's value (or a library variable it relies on); the file mount is where the app looks."""
    from agent_infra.agent_app.settings import SECRETS_DIR, SECRETS_DIR_ENV, Settings

    names = settings_env_names()
    given = {**workload.files, **workload.env}
    ignored = sorted(k for k in given if k not in names and k not in LIBRARY_VARS)
    assert not ignored, f"{workload.name}: the plan sets {ignored}, which agent_app ignores"
    if workload.files:
        assert workload.mount_path == SECRETS_DIR, f"{workload.name}: files mounted at {workload.mount_path}"
    with tempfile.TemporaryDirectory() as directory:
        for filename, content in workload.files.items():
            Path(directory, filename).write_text(content)
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update({**workload.env, SECRETS_DIR_ENV: directory})
            settings = Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    for key, raw in given.items():
        if key in LIBRARY_VARS:
            continue
        value = getattr(settings, names[key])
        # Files are read with surrounding whitespace stripped; environment values as they are.
        assert _same(value, raw.strip() if key in workload.files else raw), \
            f"{workload.name}: {key}={raw!r} from the plan, app has {value!r}"


@dataclass
class StandIns:
    """The platform's part: where services are, which ports to listen on, where files are mounted."""

    hosts: dict[str, str] = field(default_factory=dict)
    """`service:port` (or a bare host) in the plan -> `127.0.0.1:port` of the local server."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """Stand-in settings (ports, endpoints), each a platform detail, never an app setting the plan lacks."""

    def rewrite(self, text: str) -> str:
        for planned, local in sorted(self.hosts.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(planned, local)
        return text


def free_port() -> int:
    from tests.app.conftest import free_port as pick

    return pick()


class AppProcess:
    """`agent-app ...` as a subprocess with exactly the workload's environment (plus stand-ins)."""

    def __init__(self, workload: Workload, stand_ins: StandIns, home: Path) -> None:
        assert workload.command[0] == "agent-app", f"{workload.name}: command {workload.command}"
        self.workload = workload
        self.files_dir = home / f"{workload.name}-files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        for filename, content in workload.files.items():
            (self.files_dir / filename).write_text(stand_ins.rewrite(content))
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
        env.update({k: stand_ins.rewrite(v) for k, v in workload.env.items()})
        if workload.files:
            env["AGENT_SECRETS_DIR"] = str(self.files_dir)
        env.update(stand_ins.extra_env)
        self.env = env
        self.argv = [sys.executable, "-m", "agent_infra.agent_app.cli", *workload.command[1:]]
        self.log = home / f"{workload.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AppProcess:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=str(self.log.parent), stdout=out,
                                         stderr=subprocess.STDOUT)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, \
            f"{self.workload.name} exited ({self.proc and self.proc.returncode}):\n{self.output()}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_http(url: str, process: AppProcess, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        process.alive()
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready after {timeout}s ({last}):\n{process.output()}")


def signed_headers(secret: str | None, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for the inbound /webhook when the plan sets a signing secret."""
    if not secret:
        return {}
    from agent_infra.agent_app.callbacks import sign

    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret.split(), msg_id, timestamp, body)}


def check_callback(receiver: Any, task_id: str, callback_secret: str | None, timeout: float = 120.0) -> None:
    assert receiver.event.wait(timeout), f"no callback for {task_id} within {timeout}s"
    hook = receiver.received[0]
    data = hook["json"]["data"]
    assert data["task_id"] == task_id and data["status"] == "success" and data["result"] == "The answer is 5.", data
    if callback_secret:
        from agent_infra.agent_app.callbacks import verify

        assert verify(callback_secret.split(), hook["headers"], hook["body"]), "callback signature does not verify"


def drive_container_flow(api: str, key: str, receiver: Any, webhook_secret: str | None = None,
                         callback_secret: str | None = None) -> None:
    """webhook -> 202 -> worker -> signed callback; task status; a WebSocket run (API + worker)."""
    body = json.dumps({"message": "what is 2+3", "callback_url": receiver.url}).encode()
    auth = {"Authorization": f"Bearer {key}"}
    response = httpx.post(f"{api}/webhook", content=body, timeout=30,
                          headers={**auth, "content-type": "application/json", **signed_headers(webhook_secret, body)})
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    check_callback(receiver, task_id, callback_secret)
    task = httpx.get(f"{api}/v1/tasks/{task_id}", headers=auth, timeout=30).json()
    assert task["status"] == "success" and task["result"] == "The answer is 5.", task
    assert httpx.get(f"{api}/v1/tasks/{task_id}", timeout=30).status_code == 401  # keys are enforced
    chunks = asyncio.run(websocket_run(api, key))
    assert [c["type"] for c in chunks if c["type"] not in ("heartbeat", "status", "accepted")] == [
        "thinking", "action", "observation", "thinking", "result"], chunks
    assert chunks[-1]["content"] == "The answer is 9."


async def websocket_run(api: str, key: str) -> list[dict[str, Any]]:
    from websockets.asyncio.client import connect

    out: list[dict[str, Any]] = []
    session = f"wiring-{uuid.uuid4().hex[:8]}"
    async with connect(f"ws://{api.removeprefix('http://')}/agent/{session}?api_key={key}") as ws:
        await ws.send(json.dumps({"message": "what is (1+2)*3"}))
        async with asyncio.timeout(120):
            while True:
                message = json.loads(await ws.recv())
                out.append(message)
                if message["type"] in ("result", "error"):
                    return out


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def env_list(entries: list[Mapping[str, Any]]) -> dict[str, str]:
    """Kubernetes/ECS `[{name, value}]` -> dict (valueFrom entries are handled by the caller)."""
    return {e["name"]: str(e["value"]) for e in entries if "value" in e}


class PlannedRedis:
    """redis-server started with the exact script the plan gives the Redis container (`sh -c
    'exec redis-server ...'`) and its environment. Stand-ins only: the mounted files and the data
    volume are local paths (`rewrites`), and it listens on 127.0.0.1 at a free port."""

    def __init__(self, script: str, env: dict[str, str], rewrites: dict[str, str], data_dir: str, home: Path) -> None:
        if shutil.which("redis-server") is None:
            raise AssertionError("redis-server not found: apt-get install redis-server")
        self.port = free_port()
        self.data = home / "redis-data"
        self.data.mkdir(exist_ok=True)
        assert f"--dir {data_dir}" in script, f"the plan's Redis does not name its data directory: {script}"
        for planned in rewrites:
            assert planned in script, (planned, script)
        script = script.replace(f"--dir {data_dir}", f"--dir {self.data}")
        for planned, local in rewrites.items():
            script = script.replace(planned, local)
        head = "redis-server - " if "redis-server - " in script else "redis-server "
        self.script = script.replace(head, f"{head}--port {self.port} --bind 127.0.0.1 ", 1)
        self.env = {"PATH": os.environ["PATH"], **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from tests.app.conftest import wait_port

        self.proc = subprocess.Popen(["sh", "-c", self.script], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        wait_port(self.port, timeout=30)

    def kill(self) -> None:
        """SIGKILL: a node or OOM kill, no shutdown save."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


def kubernetes_redis(plan: Plan, home: Path) -> PlannedRedis:
    """The in-cluster Redis of a Kubernetes plan, password from its Secret."""
    statefulset = next(r for r in plan.of_type("kubernetes:apps/v1:StatefulSet") if r.name.endswith("-redis"))
    spec = statefulset.inputs["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["command"][:2] == ["sh", "-c"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    claims = {c["metadata"]["name"] for c in statefulset.inputs["spec"].get("volumeClaimTemplates", [])}
    assert "data" in claims, "Redis data is not on a PersistentVolumeClaim"
    item = volumes["password"]["projected"]["sources"][0]["secret"]
    secret = secret_data(plan, item["name"])
    password_file = home / "redis-password"
    password_file.write_text(secret[item["items"][0]["key"]])
    return PlannedRedis(container["command"][2], {},
                        {f"{mounts['password']}/{item['items'][0]['path']}": str(password_file)}, mounts["data"], home)


def docker_redis(plan: Plan, home: Path) -> PlannedRedis:
    """The Redis container of a Docker plan: its command, environment and data volume."""
    container = next(r for r in plan.of_type("docker:index/container:Container") if r.name.endswith("-redis"))
    assert container.inputs["command"][:2] == ["sh", "-c"]
    volumes = {v["containerPath"] for v in container.inputs.get("volumes", []) if v.get("volumeName")}
    data_dir = "/data"
    assert data_dir in volumes, "Redis data is not on a named volume"
    env = dict(e.split("=", 1) for e in container.inputs["envs"])
    return PlannedRedis(container.inputs["command"][2], env, {}, data_dir, home)


def docker_workloads(plan: Plan) -> list[Workload]:
    """The app containers (those running `agent-app`) with their `envs`."""
    return [Workload(r.name, list(r.inputs["command"]), dict(e.split("=", 1) for e in r.inputs["envs"]))
            for r in plan.of_type("docker:index/container:Container")
            if (r.inputs.get("command") or [""])[0] == "agent-app"]


def secret_data(plan: Plan, name: str) -> dict[str, str]:
    secret = next(r for r in plan.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == name)
    return dict(secret.inputs.get("stringData") or {})


def kubernetes_workloads(plan: Plan) -> list[Workload]:
    """API and worker Deployments: command, env (values, ConfigMap envFrom, secretKeyRef) and the
    projected Secret files, each resolved from the plan's own ConfigMaps and Secrets."""
    configmaps = {r.inputs["metadata"]["name"]: r.inputs.get("data") or {}
                  for r in plan.of_type("kubernetes:core/v1:ConfigMap")}
    workloads = []
    for deployment in plan.of_type("kubernetes:apps/v1:Deployment"):
        spec = deployment.inputs["spec"]["template"]["spec"]
        container = spec["containers"][0]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(configmaps[source["configMapRef"]["name"]])
        for entry in container.get("env", []):
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            else:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = secret_data(plan, ref["name"])[ref["key"]]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        files: dict[str, str] = {}
        mount_path = None
        for mount in container.get("volumeMounts", []):
            projected = volumes[mount["name"]].get("projected")
            if not projected:
                continue
            mount_path = mount["mountPath"]
            for source in projected["sources"]:
                data = secret_data(plan, source["secret"]["name"])
                for item in source["secret"]["items"]:
                    files[item["path"]] = data[item["key"]]
        workloads.append(Workload(deployment.name, list(container["command"]), env, files, mount_path))
    return workloads


def ensure_database(postgres: Any, database: str) -> None:
    """The stand-in PostgreSQL (trust auth, superuser `agent`) gets the plan's database."""
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=postgres.port, user="agent", database="postgres")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(create())
