"""The Lambda entry points invoked with AWS-shaped events against a moto server (real boto3 over HTTP).

Event shapes follow the AWS documentation: API Gateway HTTP API payload 2.0, SQS batches as the
event source mapping delivers them, and WebSocket API $connect/$default/$disconnect events. The
WebSocket management API (PostToConnection) is a local HTTP server standing in for
``https://<domainName>/<stage>``: it records what the handler pushes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from agent_infra.agent_app import lambda_handler
from agent_infra.agent_app.adapters.state.dynamodb import DynamoState, StateConflict
from agent_infra.agent_app.settings import Settings

from tests.app.conftest import MotoServer, Receiver, free_port

KEY = "lambda-test-key"


@dataclass
class Aws:
    moto: MotoServer
    queue_url: str
    dlq_url: str
    table: str
    connections: str

    def sqs_records(self, max_messages: int = 10) -> list[dict[str, Any]]:
        """Receive from the real queue and shape the messages as Lambda's SQS event records."""
        sqs = self.moto.client("sqs")
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=max_messages, VisibilityTimeout=30,
                                  MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        return [sqs_record(m, arn) for m in got.get("Messages", [])]


def sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    attrs = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attrs.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
            "ApproximateFirstReceiveTimestamp": attrs.get("ApproximateFirstReceiveTimestamp", "0"),
        },
        "messageAttributes": {
            name: {"stringValue": v["StringValue"], "stringListValues": [], "binaryListValues": [],
                   "dataType": v["DataType"]}
            for name, v in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }


def http_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """API Gateway HTTP API, payload format 2.0."""
    raw = json.dumps(body) if body is not None else None
    hdrs = {"content-type": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "x-forwarded-proto": "https", "x-forwarded-port": "443", **(headers or {})}
    if raw is not None:
        hdrs["content-length"] = str(len(raw))
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": hdrs,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123", "requestId": f"req-{uuid.uuid4().hex[:8]}", "routeKey": "$default",
            "stage": "$default", "time": "12/Mar/2025:19:03:58 +0000", "timeEpoch": int(time.time() * 1000),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "pytest"},
        },
        "body": raw, "isBase64Encoded": False,
    }


def ws_event(route: str, connection_id: str, body: Any = None, headers: dict[str, str] | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
    """API Gateway WebSocket API event ($connect carries headers and query; others a body)."""
    ctx = {"routeKey": route, "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
           "connectionId": connection_id, "domainName": "ws123.execute-api.us-east-1.amazonaws.com",
           "stage": "prod", "apiId": "ws123", "requestId": f"req-{uuid.uuid4().hex[:8]}",
           "messageDirection": "IN", "connectedAt": int(time.time() * 1000),
           "requestTimeEpoch": int(time.time() * 1000), "extendedRequestId": "x",
           "identity": {"sourceIp": "203.0.113.7"}}
    event: dict[str, Any] = {"requestContext": ctx, "isBase64Encoded": False}
    if route == "$connect":
        event["headers"] = {"Host": ctx["domainName"], "Sec-WebSocket-Version": "13", **(headers or {})}
        event["queryStringParameters"] = query
    elif route == "$disconnect":
        event["headers"] = {"Host": ctx["domainName"]}
    else:
        event["body"] = json.dumps(body)
    return event


class Context:
    def __init__(self) -> None:
        self.aws_request_id = uuid.uuid4().hex
        self.function_name = "agent-worker"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:agent-worker"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    moto_server.env(monkeypatch)
    url, dlq = moto_server.create_queues()
    env = Aws(moto_server, url, dlq, moto_server.create_table(), moto_server.create_table(range_key=False))
    for key, value in {
        "AGENT_ENVIRONMENT": "dev", "AGENT_API_KEYS": KEY, "AGENT_QUEUE_BACKEND": "sqs", "AGENT_QUEUE_URL": url,
        "AGENT_QUEUE_DLQ_URL": dlq, "AGENT_STATE_BACKEND": "dynamodb", "AGENT_STATE_TABLE": env.table,
        "AGENT_WS_CONNECTIONS_TABLE": env.connections, "AGENT_STATE_TTL_SECONDS": "3600",
        "AGENT_CALLBACK_ALLOW_PRIVATE": "true", "AGENT_CALLBACK_ALLOWED_PORTS": "[]",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AGENT_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    lambda_handler.reset()
    yield env
    lambda_handler.reset()


def call_http(method: str, path: str, body: Any = None, key: str | None = KEY, **headers: str) -> dict[str, Any]:
    if key:
        headers["x-api-key"] = key
    return lambda_handler.handler(http_event(method, path, body, headers), Context())


def test_webhook_through_handler_lands_in_sqs(aws: Aws) -> None:
    assert call_http("GET", "/healthz", key=None)["statusCode"] == 200
    assert call_http("POST", "/webhook", {"message": "hi"}, key=None)["statusCode"] == 401
    first = call_http("POST", "/webhook", {"message": "what is 6*7"}, **{"idempotency-key": "k-1"})
    assert first["statusCode"] == 202, first["body"]
    accepted = json.loads(first["body"])
    again = call_http("POST", "/webhook", {"message": "what is 6*7"}, **{"idempotency-key": "k-1"})
    assert again["statusCode"] == 202 and json.loads(again["body"])["task_id"] == accepted["task_id"]
    assert again["headers"]["idempotent-replayed"] == "true"
    records = aws.sqs_records()
    assert [json.loads(r["body"])["id"] for r in records] == [accepted["task_id"]]  # one message, not two
    status = call_http("GET", f"/v1/tasks/{accepted['task_id']}")
    assert status["statusCode"] == 200 and json.loads(status["body"])["status"] == "pending"


def test_queue_batch_reports_exactly_the_bad_message_and_stores_results(aws: Aws, receiver: Receiver) -> None:
    ids = [json.loads(call_http("POST", "/webhook", {"message": m, "session_id": "sess-q",
                                                    "callback_url": receiver.url})["body"])["task_id"]
           for m in ("what is 6*7", "what is 2+3")]
    records = aws.sqs_records()
    assert len(records) == 2
    bad = {**records[0], "messageId": str(uuid.uuid4()), "body": "{not json"}
    batch = {"Records": [records[0], bad, records[1]]}
    result = lambda_handler.queue_handler(batch, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    for task_id, answer in zip(ids, ("The answer is 42.", "The answer is 5."), strict=True):
        view = json.loads(call_http("GET", f"/v1/tasks/{task_id}")["body"])
        assert view["status"] == "success" and view["result"] == answer
        assert [s["type"] for s in view["steps"]] == ["thinking", "action", "observation", "thinking", "result"]
    assert receiver.event.wait(10) and len(receiver.received) == 2  # callbacks sent after the batch
    # restore -> run -> save: the session item carries the TTL and a version per saved step
    item = aws.moto.client("dynamodb").get_item(
        TableName=aws.table, Key={"pk": {"S": "session#sess-q"}, "sk": {"S": "state"}})["Item"]
    assert abs(int(item["expires_at"]["N"]) - (time.time() + 3600)) < 60
    assert item["version"]["N"] == "2" and len(json.loads(item["state"]["S"])["history"]) == 4


def test_duplicate_delivery_runs_the_task_once(aws: Aws) -> None:
    task_id = json.loads(call_http("POST", "/webhook", {"message": "what is 2+3"})["body"])["task_id"]
    (record,) = aws.sqs_records()
    redelivered = {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "2"}}
    assert lambda_handler.queue_handler({"Records": [record, redelivered]}, Context()) == {"batchItemFailures": []}
    assert lambda_handler.queue_handler({"Records": [redelivered]}, Context()) == {"batchItemFailures": []}
    store = lambda_handler.runtime().container.store
    assert lambda_handler.runtime().run(store.runs(task_id)) == 1


def test_duplicate_delivery_while_another_invocation_runs_is_retried_not_rerun(aws: Aws) -> None:
    task_id = json.loads(call_http("POST", "/webhook", {"message": "what is 2+3"})["body"])["task_id"]
    (record,) = aws.sqs_records()
    rt = lambda_handler.runtime()
    state = rt.container.state
    assert isinstance(state, DynamoState)
    assert rt.run(state.claim_delivery(task_id, "other-invocation", 300))
    result = lambda_handler.queue_handler({"Records": [record]}, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert rt.run(rt.container.store.runs(task_id)) == 0


def test_concurrent_session_write_is_detected(aws: Aws) -> None:
    settings = Settings()
    client = aws.moto.client("dynamodb")
    a, b = DynamoState(settings, client=client), DynamoState(settings, client=client)

    async def race() -> None:
        await a.put_session("sess-c", {"history": ["v1"]}, 120)
        assert await a.get_session("sess-c") == await b.get_session("sess-c") == {"history": ["v1"]}
        await a.put_session("sess-c", {"history": ["from a"]}, 120)
        with pytest.raises(StateConflict, match="saved by another invocation"):
            await b.put_session("sess-c", {"history": ["from b"]}, 120)
        assert await b.get_session("sess-c") == {"history": ["from a"]}  # not overwritten

    asyncio.run(race())
    item = client.get_item(TableName=aws.table, Key={"pk": {"S": "session#sess-c"}, "sk": {"S": "state"}})["Item"]
    assert item["version"]["N"] == "2" and 0 < int(item["expires_at"]["N"]) - time.time() <= 121


@dataclass
class Management:
    """Stand-in for the API Gateway management endpoint: records PostToConnection calls."""

    port: int
    posts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/prod"


@pytest.fixture
def management() -> Iterator[Management]:
    mgmt = Management(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            connection = unquote(self.path.rsplit("/", 1)[-1])
            if connection in mgmt.gone:
                self.send_response(410)
                payload = b'{"message": "Gone"}'
                self.send_header("x-amzn-errortype", "GoneException")
            else:
                mgmt.posts.append((self.path, self.headers.get("authorization", ""), json.loads(body)))
                self.send_response(200)
                payload = b""
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", mgmt.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield mgmt
    server.shutdown()
    server.server_close()


def test_websocket_connect_default_pushes_chunks_disconnect(
    aws: Aws, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_WS_MANAGEMENT_ENDPOINT", management.endpoint)
    conn = "L0SM9cOFvHcCIhw="
    ddb = aws.moto.client("dynamodb")
    assert lambda_handler.websocket_handler(ws_event("$connect", conn), Context())["statusCode"] == 401
    bad = lambda_handler.websocket_handler(ws_event("$connect", conn, query={"api_key": "wrong"}), Context())
    assert bad["statusCode"] == 403
    assert lambda_handler.websocket_handler(ws_event("$default", conn, {"message": "hi"}), Context())["statusCode"] == 403
    ok = lambda_handler.websocket_handler(ws_event("$connect", conn, headers={"X-Api-Key": KEY}), Context())
    assert ok["statusCode"] == 200
    item = ddb.get_item(TableName=aws.connections, Key={"pk": {"S": conn}})["Item"]
    assert item["session_id"]["S"] == "ws-L0SM9cOFvHcCIhw-" and int(item["expires_at"]["N"]) > time.time() + 7200

    done = lambda_handler.websocket_handler(ws_event("$default", conn, {"message": "what is (1+2)*3"}), Context())
    assert done["statusCode"] == 200
    paths = {p for p, _, _ in management.posts}
    assert paths == {"/prod/@connections/L0SM9cOFvHcCIhw%3D"}  # POST {endpoint}/@connections/{id}
    assert all(auth.startswith("AWS4-HMAC-SHA256") for _, auth, _ in management.posts)  # SigV4-signed calls
    chunks = [c for _, _, c in management.posts]
    assert [c["type"] for c in chunks] == ["thinking", "action", "observation", "thinking", "result"]
    assert chunks[1]["content"]["tool"] == "calculator" and chunks[-1]["content"] == "The answer is 9."
    state = ddb.get_item(TableName=aws.table, Key={"pk": {"S": "session#ws-L0SM9cOFvHcCIhw-"}, "sk": {"S": "state"}})
    assert "expires_at" in state["Item"]

    management.gone.add(conn)  # the client went away mid-run: the run still finishes, nothing raises
    assert lambda_handler.websocket_handler(ws_event("$default", conn, {"message": "2+2"}), Context())["statusCode"] == 200
    assert lambda_handler.websocket_handler(ws_event("$disconnect", conn), Context())["statusCode"] == 200
    assert "Item" not in ddb.get_item(TableName=aws.connections, Key={"pk": {"S": conn}})


def test_websocket_connect_maps_key_to_its_principal(
    aws: Aws, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With tenant keys the connection records the key's principal, and its runs' session state is
    the principal's own (stored as ``<principal>/<session>``)."""
    keys = [{"key": "alice-key-0001", "principal": "alice"}, {"key": "ops-key-00002", "principal": "alice",
                                                                 "scopes": ["operator"]}]
    monkeypatch.setenv("AGENT_API_KEYS", json.dumps(keys))
    monkeypatch.setenv("AGENT_WS_MANAGEMENT_ENDPOINT", management.endpoint)
    lambda_handler.reset()
    conn = "TenantConn1="
    ddb = aws.moto.client("dynamodb")
    ops = lambda_handler.websocket_handler(ws_event("$connect", conn, headers={"X-Api-Key": "ops-key-00002"}), Context())
    assert ops["statusCode"] == 403  # operator scope only: no runs
    ok = lambda_handler.websocket_handler(ws_event("$connect", conn, query={"api_key": "alice-key-0001"}), Context())
    assert ok["statusCode"] == 200
    item = ddb.get_item(TableName=aws.connections, Key={"pk": {"S": conn}})["Item"]
    assert item["principal"]["S"] == "alice"
    done = lambda_handler.websocket_handler(ws_event("$default", conn, {"message": "2*5"}), Context())
    assert done["statusCode"] == 200 and management.posts[-1][2]["content"] == "The answer is 10."
    session = item["session_id"]["S"]
    key = {"pk": {"S": f"session#alice/{session}"}, "sk": {"S": "state"}}
    assert "Item" in ddb.get_item(TableName=aws.table, Key=key)
