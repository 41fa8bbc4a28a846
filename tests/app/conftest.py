"""Fixtures that start real servers: throwaway redis-server and PostgreSQL processes, uvicorn on a
free port, a local callback receiver. A server that cannot start fails the test naming what to
install; nothing is skipped silently. The machine's own Redis (6379) / PostgreSQL (5432) are never used."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request  # resolved by FastAPI in FakeQdrant's routes

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))



def _pgserver_bin() -> Path | None:
    """PostgreSQL 16 + pgvector from the `pgserver` wheel (x86_64), when installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("pgserver")
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    return install / "bin" if (install / "bin" / "initdb").exists() else None


def _system_pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BUNDLED = _pgserver_bin()
PG_BIN = Path(os.environ.get("AGENT_TEST_PG_BIN") or PG_BUNDLED or _system_pg_bin())
PG_HAS_PGVECTOR = PG_BUNDLED is not None and PG_BIN == PG_BUNDLED
"""The pgserver build ships the vector extension, so the pgvector contract must pass there."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class RedisProcess:
    """A throwaway redis-server; ``stop()``/``start()`` keep the port (outage tests)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found: install it (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="agent-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@dataclass
class PostgresProcess:
    port: int
    dir: str
    url: str


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresProcess]:
    initdb = PG_BIN / "initdb"
    if not initdb.exists():
        pytest.fail(
            f"PostgreSQL server binaries not found in {PG_BIN}: apt-get install postgresql-15 "
            "(or set AGENT_TEST_PG_BIN)"
        )
    base = tempfile.mkdtemp(prefix="agent-pg-")
    data = os.path.join(base, "data")
    port = free_port()
    as_user: list[str] = []
    pg_bin = PG_BIN
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root and no 'postgres' user to run initdb as; create one")
        os.chown(base, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
        if PG_BIN == PG_BUNDLED:
            # The wheel may sit under root's home, unreachable for the postgres user: run a copy.
            # Keep the wheel's layout: the binaries' rpath is $ORIGIN/../../../pgserver.libs.
            package = PG_BIN.parent.parent
            shutil.copytree(PG_BIN.parent, os.path.join(base, "pgserver", "pginstall"), symlinks=True)
            shutil.copytree(package.parent / "pgserver.libs", os.path.join(base, "pgserver.libs"), symlinks=True)
            pg_bin = Path(base) / "pgserver" / "pginstall" / "bin"
            for path in ("pgserver", "pgserver.libs"):
                subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", os.path.join(base, path)], check=True)
    initdb = pg_bin / "initdb"
    subprocess.run(
        [*as_user, str(initdb), "-D", data, "-U", "agent", "--auth=trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    log = os.path.join(base, "log")
    subprocess.run(
        [
            *as_user,
            str(pg_bin / "pg_ctl"),
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield PostgresProcess(port, base, f"postgresql+asyncpg://agent@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            [*as_user, str(pg_bin / "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        shutil.rmtree(base, ignore_errors=True)


class ServerThread:
    """uvicorn serving an app on a free port, in a thread with its own event loop."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", ws_ping_interval=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Receiver:
    """A real local HTTP server that records callbacks and answers a scripted status sequence."""

    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            rec.received.append(
                {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "json": json.loads(body)}
            )
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
            rec.event.set()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", rec.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class MotoServer:
    """A real moto server (AWS API emulation over HTTP) and boto3 clients pointed at it."""

    endpoint: str

    ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        ).client(service, endpoint_url=self.endpoint)

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point every default boto3 client of this process at the server."""
        for key, value in {**self.ENV, "AWS_ENDPOINT_URL": self.endpoint}.items():
            monkeypatch.setenv(key, value)

    def create_table(self, name: str | None = None, *, range_key: bool = True) -> str:
        name = name or f"t-{time.time_ns()}"
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
        if range_key:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attrs.append({"AttributeName": "sk", "AttributeType": "S"})
        ddb = self.client("dynamodb")
        ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST")
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
        return name

    def create_queues(self, name: str | None = None, max_receive_count: int = 3) -> tuple[str, str]:
        name = name or f"q-{time.time_ns()}"
        sqs = self.client("sqs")
        dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
        url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        return url, dlq


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    binary = shutil.which("moto_server")
    if binary is None:
        pytest.fail("moto_server not found: pip install 'moto[server]'")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield MotoServer(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(10)


class FakeQdrant:
    """A local stand-in for Qdrant's REST API (the endpoints QdrantMemory uses), served by uvicorn:
    collections are dicts, search is brute-force cosine. Checks the ``api-key`` header when set."""

    def __init__(self, api_key: str | None = None) -> None:
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        self.api_key = api_key
        self.collections: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        app = FastAPI()

        @app.middleware("http")
        async def auth(request: Request, call_next: Any) -> Any:
            self.requests.append((request.method, request.url.path))
            if self.api_key and request.headers.get("api-key") != self.api_key:
                return JSONResponse({"status": {"error": "unauthorized"}}, status_code=401)
            return await call_next(request)

        @app.get("/collections")
        async def list_collections() -> Any:
            return {"result": {"collections": [{"name": n} for n in self.collections]}, "status": "ok"}

        @app.get("/collections/{name}")
        async def get_collection(name: str) -> Any:
            if name not in self.collections:
                return JSONResponse({"status": {"error": f"Collection `{name}` doesn't exist!"}}, status_code=404)
            size = self.collections[name]["size"]
            return {"result": {"config": {"params": {"vectors": {"size": size, "distance": "Cosine"}}}}}

        @app.put("/collections/{name}")
        async def create_collection(name: str, request: Request) -> Any:
            body = await request.json()
            if name in self.collections:
                return JSONResponse({"status": {"error": "already exists"}}, status_code=409)
            self.collections[name] = {"size": body["vectors"]["size"], "points": {}}
            return {"result": True, "status": "ok"}

        @app.put("/collections/{name}/points")
        async def upsert(name: str, request: Request) -> Any:
            body = await request.json()
            for point in body["points"]:
                assert len(point["vector"]) == self.collections[name]["size"]
                self.collections[name]["points"][point["id"]] = point
            return {"result": {"status": "completed"}, "status": "ok"}

        @app.post("/collections/{name}/points/search")
        async def search(name: str, request: Request) -> Any:
            body = await request.json()
            q = body["vector"]
            hits = [
                {"id": p["id"], "score": sum(a * b for a, b in zip(q, p["vector"], strict=True)),
                 "payload": p["payload"] if body.get("with_payload") else None}
                for p in self.collections[name]["points"].values()
            ]
            hits.sort(key=lambda h: h["score"], reverse=True)
            return {"result": hits[: body["limit"]], "status": "ok"}

        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def fake_qdrant() -> Iterator[FakeQdrant]:
    fake = FakeQdrant(api_key="qk-test")
    with fake.server:
        yield fake


class FakeOpenSearch:
    """A local stand-in for an OpenSearch Serverless vector collection (the REST calls
    OpenSearchMemory makes), on a stdlib HTTP server. Every request must carry a valid SigV4
    ``Authorization`` for the service ``aoss``: the signature is recomputed here, independently of
    botocore, from the raw request and the known test credentials (``CREDENTIALS``, set in the
    environment by the fixture). Like the real service it refuses custom document ids, and it
    scores k-NN hits the way faiss ``innerproduct`` does."""

    CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAFAKEOPENSEARCH01", "AWS_SECRET_ACCESS_KEY": "fake/opensearch/secret+key",
                   "AWS_SESSION_TOKEN": "fake-session-token", "AWS_REGION": "eu-west-3"}

    def __init__(self) -> None:
        self.port = free_port()
        self.indexes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.rejected: list[str] = []
        self.signed_headers: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: Any = None) -> None:
                data = b"" if body is None or self.command == "HEAD" else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.requests.append((self.command, self.path))
                problem = fake.verify(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if problem:
                    fake.rejected.append(problem)
                    return self._answer(403, {"message": f"The request signature we calculated does not match: {problem}"})
                status, answer = fake.route(self.command, self.path, json.loads(body) if body else None)
                self._answer(status, answer)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- SigV4, recomputed from the raw request --------------------------------------------------
    def verify(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> str | None:
        import datetime
        import hashlib
        import hmac
        import re
        from urllib.parse import quote, unquote, urlsplit

        auth = headers.get("authorization", "")
        match = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
            r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
        if not match:
            return f"no SigV4 Authorization header: {auth[:60]!r}"
        key_id, day, region, service, signed, signature = match.groups()
        creds = self.CREDENTIALS
        if key_id != creds["AWS_ACCESS_KEY_ID"]:
            return f"unknown access key {key_id}"
        if service != "aoss":
            return f"signed for service {service}, not aoss"
        if region != creds["AWS_REGION"]:
            return f"signed for region {region}"
        names = signed.split(";")
        for required in ("host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
            if required not in names:
                return f"{required} is not signed"
        if headers.get("x-amz-security-token") != creds["AWS_SESSION_TOKEN"]:
            return "wrong session token"
        payload_hash = hashlib.sha256(body).hexdigest()
        if headers.get("x-amz-content-sha256") != payload_hash:
            return "x-amz-content-sha256 is not the body's hash"
        stamp = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            return f"bad x-amz-date {stamp!r}"
        if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300 or stamp[:8] != day:
            return "x-amz-date outside 5 minutes or not the credential's day"
        split = urlsplit(raw_path)
        query = "&".join(sorted(
            f"{quote(unquote(k), safe='-_.~')}={quote(unquote(v), safe='-_.~')}"
            for k, _, v in (p.partition("=") for p in split.query.split("&") if p)))
        canonical = "\n".join([
            method, quote(unquote(split.path), safe="/-_.~"), query,
            "".join(f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in names), signed, payload_hash])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, f"{day}/{region}/{service}/aws4_request",
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + creds["AWS_SECRET_ACCESS_KEY"]).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "signature mismatch"
        self.signed_headers.append(signed)
        return None

    # -- the OpenSearch API subset -----------------------------------------------------------------
    def route(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        import uuid
        from urllib.parse import unquote, urlsplit

        parts = [unquote(p) for p in urlsplit(raw_path).path.strip("/").split("/") if p]
        missing = {"error": {"type": "index_not_found_exception", "reason": "no such index"}, "status": 404}
        if len(parts) == 1:
            name = parts[0]
            if method in ("GET", "HEAD"):
                if name not in self.indexes:
                    return 404, missing
                return 200, {name: {"mappings": self.indexes[name]["mappings"], "settings": self.indexes[name]["settings"]}}
            if method == "PUT":
                if name in self.indexes:
                    return 400, {"error": {"type": "resource_already_exists_exception"}, "status": 400}
                assert body["settings"]["index"]["knn"] is True
                field = body["mappings"]["properties"]["embedding"]
                assert field["type"] == "knn_vector" and field["method"]["name"] == "hnsw"
                assert (field["method"]["engine"], field["method"]["space_type"]) == ("faiss", "innerproduct")
                self.indexes[name] = {**body, "docs": {}}
                return 200, {"acknowledged": True, "index": name}
        if len(parts) >= 2 and parts[0] not in self.indexes:
            return 404, missing
        if len(parts) == 2 and parts[1] == "_doc" and method == "POST":
            index = self.indexes[parts[0]]
            assert len(body["embedding"]) == index["mappings"]["properties"]["embedding"]["dimension"]
            doc_id = uuid.uuid4().hex
            index["docs"][doc_id] = body
            return 201, {"_index": parts[0], "_id": doc_id, "result": "created"}
        if len(parts) == 3 and parts[1] == "_doc":
            if method != "DELETE":  # vector search collections refuse custom document ids
                return 400, {"error": {"type": "illegal_argument_exception",
                                       "reason": "Document ID is not supported in create/index operation request"}}
            found = self.indexes[parts[0]]["docs"].pop(parts[2], None)
            return (200 if found else 404), {"result": "deleted" if found else "not_found"}
        if len(parts) == 2 and parts[1] == "_search" and method == "POST":
            return 200, self.search(self.indexes[parts[0]]["docs"], body)
        return 400, {"error": {"type": "unsupported", "reason": f"{method} {raw_path}"}}

    @staticmethod
    def search(docs: dict[str, dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        query = body["query"]
        if "term" in query:
            want = query["term"]["doc_id"]
            hits = [{"_id": i, "_score": 1.0} for i, d in docs.items() if d["doc_id"] == want]
        else:
            knn = query["knn"]["embedding"]
            hits = []
            for i, doc in docs.items():
                ip = sum(a * b for a, b in zip(knn["vector"], doc["embedding"], strict=True))
                hits.append({"_id": i, "_score": 1 + ip if ip >= 0 else 1 / (1 - ip)})
            hits.sort(key=lambda h: h["_score"], reverse=True)
            hits = hits[: knn["k"]]
        fields = body.get("_source", True)
        for hit in hits:
            if fields is not False:
                source = docs[hit["_id"]]
                hit["_source"] = {k: v for k, v in source.items() if fields is True or k in fields}
        return {"hits": {"total": {"value": len(hits)}, "hits": hits[: body.get("size", 10)]}}


@pytest.fixture
def fake_opensearch(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenSearch]:
    fake = FakeOpenSearch()
    for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    for key, value in FakeOpenSearch.CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
