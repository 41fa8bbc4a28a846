"""AWS Lambda entry points over the same core, adapters and FastAPI app as the container service.

* :func:`handler` - API Gateway HTTP API (payload v2) and function URLs: the FastAPI app through
  Mangum, so ``/v1/runs``, ``/webhook``, ``/v1/tasks/{id}``, ``/healthz`` behave exactly as in
  ``agent-app serve`` (API keys required: a Lambda is never "loopback").
* :func:`queue_handler` - SQS batches from the event source mapping: each record is a task run
  through ``AgentService.execute`` (result stored, callback scheduled and sent); failures are
  reported per record (``batchItemFailures``, Powertools' batch utility) so one bad message does
  not redeliver the batch. A duplicate delivery runs the task once: a finished task is skipped by
  the store, a task another invocation is running right now is refused by a conditional claim.
* :func:`websocket_handler` - API Gateway WebSocket API: ``$connect`` (API key in a header or
  ``?api_key=``), ``$disconnect``, and ``$default`` (``{"message": ...}``): the agent runs and each
  chunk (thinking / action / observation / result) is pushed to the connection with the
  management API's ``PostToConnection`` as it is produced.

Cold start: importing this module imports nothing heavy; the event loop, the adapters (boto3
clients), the FastAPI app and Powertools are built on first use and kept for the life of the
execution environment. Session state is restored from and saved to DynamoDB with a TTL and a
version check on every step (``agent_infra.agent_app.adapters.state.dynamodb``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .core.models import Task
    from .wiring import Container

log = logging.getLogger("agent_app.lambda")
T = TypeVar("T")


class TaskInProgress(RuntimeError):
    """Another invocation is executing this task now (duplicate delivery): retry after the lease."""


class SessionBusyRetry(RuntimeError):
    """The task's session is running another task: SQS redelivers after the visibility timeout."""


class Runtime:
    """Everything built once per execution environment and reused by every invocation."""

    def __init__(self) -> None:
        from .wiring import build

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.container: Container = build()
        self.run(self.container.start())
        self._http: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
        self._sender: Any = None
        self._mgmt: dict[str, Any] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(coro)

    @property
    def http(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        if self._http is None:
            from mangum import Mangum

            from .api.app import create_app

            app = create_app(self.container, embedded_worker=False, allow_anonymous=False)
            # lifespan off: the container is started once above and must outlive each invocation.
            self._http = Mangum(app, lifespan="off")
        return self._http

    @property
    def sender(self) -> Any:
        if self._sender is None:
            from .callbacks import CallbackSender

            settings = self.container.settings
            self._sender = CallbackSender(self.container.store, (settings.secret("callback_signing_secret") or "").split(),
                                          self.container.callback_policy(),
                                          max_age_seconds=settings.callback_max_age_seconds)
        return self._sender

    def management(self, endpoint: str) -> Any:
        """``apigatewaymanagementapi`` client for one WebSocket API stage (cached per endpoint)."""
        if endpoint not in self._mgmt:
            import boto3
            from botocore.config import Config

            self._mgmt[endpoint] = boto3.session.Session().client(
                "apigatewaymanagementapi", endpoint_url=endpoint,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10))
        return self._mgmt[endpoint]

    def ddb(self) -> Any:
        if "dynamodb" not in self._mgmt:
            from .adapters.state.dynamodb import make_client

            self._mgmt["dynamodb"] = make_client("dynamodb")
        return self._mgmt["dynamodb"]


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The per-environment runtime, built on the first invocation (tests call :func:`reset`)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def reset() -> None:
    """Forget the runtime (tests change settings between cases)."""
    global _runtime
    if _runtime is not None:
        rt, _runtime = _runtime, None
        try:
            rt.run(rt.container.close())
        finally:
            rt.loop.close()


# -- HTTP --------------------------------------------------------------------------------------------
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway HTTP API (payload v2) / function URL event -> the FastAPI app."""
    rt = runtime()
    asyncio.set_event_loop(rt.loop)
    return rt.http(event, context)


# -- SQS ---------------------------------------------------------------------------------------------
def queue_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch -> one ``execute`` per record; returns ``{"batchItemFailures": [...]}``."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    rt = runtime()
    request_id = getattr(context, "aws_request_id", None) or f"local-{time.time_ns()}"

    def record_handler(record: SQSRecord) -> None:
        rt.run(_execute_record(rt, record.raw_event, request_id))

    # A batch where every record failed is reported record by record too (not raised), so the
    # response always names exactly the failed messages.
    result = process_partial_response(event=event, record_handler=record_handler,
                                      processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
                                      context=context)
    try:
        rt.run(rt.sender.deliver_due())
    except Exception as exc:  # callbacks are retried from the outbox on a later batch
        log.warning("callback delivery: %s", exc)
    return dict(result)


def task_of_record(record: dict[str, Any]) -> Task:
    """An SQS record's task, with the attempt SQS and earlier hand-backs counted."""
    from .core.models import Task

    task = Task.from_json(record["body"])
    received = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    carried = int(record.get("messageAttributes", {}).get("attempts", {}).get("stringValue", "0"))
    return task.model_copy(update={"attempts": carried + received})


async def _execute_record(rt: Runtime, record: dict[str, Any], request_id: str) -> None:
    task = task_of_record(record)
    container = rt.container
    holder = f"{request_id}:{record.get('messageId', '')}"
    lease = container.settings.run_timeout_seconds + 60
    claim = getattr(container.state, "claim_delivery", None)
    if claim is not None and not await claim(task.id, holder, lease):
        raise TaskInProgress(f"task {task.id} is being executed by another invocation")
    try:
        outcome = await container.service.execute(task, f"lambda:{request_id}")
    finally:
        release = getattr(container.state, "release_delivery", None)
        if release is not None:
            await release(task.id, holder)
    if outcome.status == "busy":
        raise SessionBusyRetry(f"session {task.session_id} is running another task")
    log.info("task %s: %s", task.id, outcome.status)


# -- WebSocket ---------------------------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9._:-]")


def websocket_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway WebSocket event ($connect / $disconnect / $default)."""
    rt = runtime()
    ctx = event.get("requestContext", {})
    route = ctx.get("routeKey", "$default")
    if route == "$connect":
        return rt.run(_connect(rt, event))
    if route == "$disconnect":
        rt.run(_table_call(rt, "delete_item", Key={"pk": {"S": ctx["connectionId"]}}))
        return {"statusCode": 200}
    return rt.run(_default(rt, event))


def _connections_table(rt: Runtime) -> str:
    settings = rt.container.settings
    table = settings.ws_connections_table or settings.state_table
    if not table:
        raise RuntimeError("websocket_handler needs AGENT_WS_CONNECTIONS_TABLE (or AGENT_STATE_TABLE)")
    return table


async def _table_call(rt: Runtime, op: str, **kwargs: Any) -> Any:
    from .adapters.state.dynamodb import call

    return await call(getattr(rt.ddb(), op), TableName=_connections_table(rt), **kwargs)


async def _connect(rt: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    from fastapi import HTTPException

    from .api.security import Authenticator, parse_api_keys

    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    query = event.get("queryStringParameters") or {}
    try:
        keys = parse_api_keys(rt.container.settings.secret("api_keys"))
        principal = Authenticator(keys, allow_anonymous=False).check(headers, query)
        principal.require("runs")
    except HTTPException as exc:
        return {"statusCode": exc.status_code, "body": json.dumps({"detail": exc.detail})}
    ctx = event["requestContext"]
    session_id = _SAFE.sub("-", query.get("session_id") or f"ws-{ctx['connectionId']}")[:128]
    ttl = int(time.time()) + 2 * 3600 + 600  # API Gateway closes a connection after 2 hours
    await _table_call(rt, "put_item", Item={
        "pk": {"S": ctx["connectionId"]}, "session_id": {"S": session_id}, "key_id": {"S": principal.key_id}, "principal": {"S": principal.id},
        "connected_at": {"N": str(int(time.time()))}, "expires_at": {"N": str(ttl)}})
    return {"statusCode": 200}


async def _default(rt: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    from .adapters.state.dynamodb import call, is_conditional_failure
    from .core.models import DEFAULT_PRINCIPAL, Chunk, RunInput
    from .core.service import SessionBusy

    ctx = event["requestContext"]
    connection_id = ctx["connectionId"]
    endpoint = rt.container.settings.ws_management_endpoint or f"https://{ctx['domainName']}/{ctx['stage']}"
    mgmt = rt.management(endpoint)
    gone = False

    async def push(payload: dict[str, Any]) -> None:
        nonlocal gone
        if gone:
            return
        try:
            await call(mgmt.post_to_connection, ConnectionId=connection_id,
                       Data=json.dumps(payload, default=str).encode())
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") != "GoneException":
                raise
            gone = True  # the client left: finish the run (its result is stored), stop pushing

    conn = (await _table_call(rt, "get_item", Key={"pk": {"S": connection_id}}, ConsistentRead=True)).get("Item")
    if conn is None:
        return {"statusCode": 403, "body": "unknown connection: reconnect"}
    try:
        data = json.loads(event.get("body") or "{}")
        run = RunInput(message=data.get("message", ""), session_id=data.get("session_id") or conn["session_id"]["S"],
                       metadata=data.get("metadata") or {})
    except (ValueError, AttributeError, ValidationError) as exc:
        await push({"type": "error", "content": {"code": "invalid", "message": str(exc)}})
        return {"statusCode": 400}
    try:
        principal = (conn.get("principal") or {}).get("S") or DEFAULT_PRINCIPAL  # the key's, from $connect
        async for chunk in rt.container.service.run_stream(run, policy=data.get("policy"), principal=principal):
            await push(chunk.model_dump())
    except SessionBusy as exc:
        await push({"type": "error", "content": {"code": "busy", "message": str(exc)}})
        return {"statusCode": 409}
    except Exception as exc:
        if type(exc).__name__ != "StateConflict" and not is_conditional_failure(exc):
            raise
        await push(Chunk(type="error", content={"code": "conflict", "message": str(exc)}).model_dump())
        return {"statusCode": 409}
    return {"statusCode": 200}
