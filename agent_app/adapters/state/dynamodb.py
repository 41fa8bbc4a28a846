"""Session state, run locks and event streams in one DynamoDB table (the serverless state store).

Single-table layout on the ``pk``/``sk`` string keys the ``SessionTable`` component creates; every
item carries ``expires_at`` (epoch seconds), the table's TTL attribute, so nothing outlives
``AGENT_STATE_TTL_SECONDS`` (DynamoDB deletes expired items within about two days, so reads
also filter on it):

==========================  ==========  ==================================================
pk                          sk          what
==========================  ==========  ==================================================
``session#<id>``            ``state``   the session's state (JSON) and its ``version``
``session#<id>``            ``lock``    the active run (``task_id``, ``lock_until``)
``session#<id>``            ``interrupt`` the run an interrupt was requested for
``events#<id>``             event id    one streamed chunk; ids sort by time
``delivery#<task id>``      ``claim``   who is executing a task right now (duplicate SQS delivery)
==========================  ==========  ==================================================

Optimistic concurrency: :meth:`get_session` remembers the ``version`` it read and
:meth:`put_session` writes only if the item still has that version (or still does not exist), so
two invocations that restored the same session cannot silently overwrite each other: the second
one gets :class:`StateConflict`. The restore -> run step -> save cycle is therefore safe without
a lock held across the run, which Lambda could not guarantee to release.

boto3 is synchronous; calls run in a worker thread (``asyncio.to_thread``) so the event loop of
the container service stays responsive. The client is created lazily and reused.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ...core.models import Chunk
from ...core.ports import BackendUnavailable


class StateConflict(RuntimeError):
    """The session changed since it was read (another invocation saved first): restore and retry."""


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def num(item: dict[str, Any], name: str, default: float = 0.0) -> float:
    attr = item.get(name)
    return float(attr["N"]) if attr else default


def text(item: dict[str, Any], name: str) -> str | None:
    attr = item.get(name)
    return attr.get("S") if attr else None


def make_client(service: str) -> Any:
    """A boto3 client with standard retries and short connect timeouts (``AWS_ENDPOINT_URL`` honoured)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=3, read_timeout=20)
    return boto3.session.Session().client(service, config=config)


def is_conditional_failure(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


def unavailable(exc: Exception) -> bool:
    """Connection-level failures and throttling map to :class:`BackendUnavailable` (HTTP 503)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, BotoCoreError | OSError):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return code in ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                        "InternalServerError", "ServiceUnavailable", "ResourceNotFoundException")
    return False


async def call(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, **kwargs)
    except Exception as exc:
        if unavailable(exc):
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise


class DynamoState:
    """:class:`~agent_app.core.ports.StateStore` on DynamoDB. ``DynamoState(settings)`` or with explicit args."""

    def __init__(
        self,
        settings: Any = None,
        *,
        table: str | None = None,
        ttl_seconds: int | None = None,
        heartbeat_seconds: float = 15.0,
        poll_seconds: float = 0.25,
        client: Any = None,
    ) -> None:
        self.table = table or (settings.state_table if settings is not None else None) or ""
        if not self.table:
            raise ValueError("AGENT_STATE_BACKEND=dynamodb needs AGENT_STATE_TABLE")
        self.ttl = ttl_seconds or (settings.state_ttl_seconds if settings is not None else 86_400)
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = min(poll_seconds, heartbeat_seconds)
        self._client = client
        self._versions: dict[str, int] = {}
        self._seq = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client("dynamodb")
        return self._client

    def _expiry(self, ttl_seconds: float | None = None) -> dict[str, str]:
        return n(int(time.time() + (ttl_seconds or self.ttl)))

    async def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        res = await call(self.client.get_item, TableName=self.table, Key={"pk": s(pk), "sk": s(sk)},
                         ConsistentRead=True)
        item: dict[str, Any] | None = res.get("Item")
        if item is None or num(item, "expires_at", float("inf")) < time.time():
            return None
        return item

    # -- session state ---------------------------------------------------------------------------
    async def get_versioned(self, session_id: str) -> tuple[dict[str, Any] | None, int]:
        """The state and its version (0 if none); an expired item reads as none but keeps its version."""
        res = await call(self.client.get_item, TableName=self.table,
                         Key={"pk": s(f"session#{session_id}"), "sk": s("state")}, ConsistentRead=True)
        item = res.get("Item")
        if item is None:
            return None, 0
        version = int(num(item, "version"))
        if num(item, "expires_at", float("inf")) < time.time():
            return None, version
        return json.loads(text(item, "state") or "{}"), version

    async def put_versioned(self, session_id: str, state: dict[str, Any], ttl_seconds: int,
                            expected_version: int) -> int:
        """Write if the stored version is still ``expected_version`` (0: no item); returns the new version.
        Raises :class:`StateConflict` otherwise."""
        item = {"pk": s(f"session#{session_id}"), "sk": s("state"), "state": s(json.dumps(state)),
                "version": n(expected_version + 1), "expires_at": self._expiry(ttl_seconds),
                "updated_at": n(time.time())}
        if expected_version:
            condition, values = "version = :v", {":v": n(expected_version)}
        else:
            condition, values = "attribute_not_exists(pk)", {}
        try:
            await call(self.client.put_item, TableName=self.table, Item=item, ConditionExpression=condition,
                       **({"ExpressionAttributeValues": values} if values else {}))
        except Exception as exc:
            if is_conditional_failure(exc):
                raise StateConflict(
                    f"session {session_id}: saved by another invocation since version {expected_version} was read"
                ) from exc
            raise
        return expected_version + 1

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        state, version = await self.get_versioned(session_id)
        self._versions[session_id] = version
        return state

    async def put_session(self, session_id: str, state: dict[str, Any], ttl_seconds: int) -> None:
        """Conditional on the version :meth:`get_session` read in this process (none read: must not exist)."""
        expected = self._versions.pop(session_id, 0)
        self._versions[session_id] = await self.put_versioned(session_id, state, ttl_seconds, expected)

    # -- run lock ----------------------------------------------------------------------------------
    async def acquire_run(self, session_id: str, task_id: str, ttl_seconds: float) -> bool:
        now = time.time()
        try:
            await call(
                self.client.put_item, TableName=self.table,
                Item={"pk": s(f"session#{session_id}"), "sk": s("lock"), "task_id": s(task_id),
                      "lock_until": n(now + ttl_seconds), "started_at": n(now),
                      "expires_at": n(int(now + ttl_seconds) + 1)},
                ConditionExpression="attribute_not_exists(pk) OR task_id = :t OR lock_until < :now",
                ExpressionAttributeValues={":t": s(task_id), ":now": n(now)})
        except Exception as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    async def release_run(self, session_id: str, task_id: str) -> None:
        try:
            await call(self.client.delete_item, TableName=self.table,
                       Key={"pk": s(f"session#{session_id}"), "sk": s("lock")},
                       ConditionExpression="task_id = :t", ExpressionAttributeValues={":t": s(task_id)})
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise

    async def active_run(self, session_id: str) -> str | None:
        item = await self._get(f"session#{session_id}", "lock")
        if item is None or num(item, "lock_until") < time.time():
            return None
        return text(item, "task_id")

    async def request_interrupt(self, session_id: str) -> None:
        holder = await self.active_run(session_id)
        if holder is None:
            return
        await call(self.client.put_item, TableName=self.table,
                   Item={"pk": s(f"session#{session_id}"), "sk": s("interrupt"), "task_id": s(holder),
                         "expires_at": self._expiry()})

    async def interrupted(self, session_id: str, task_id: str) -> bool:
        item = await self._get(f"session#{session_id}", "interrupt")
        return item is not None and text(item, "task_id") == task_id

    # -- one execution per task (duplicate SQS deliveries) ----------------------------------------
    async def claim_delivery(self, task_id: str, holder: str, ttl_seconds: float) -> bool:
        """True if ``holder`` may execute ``task_id`` now: nobody else holds a live claim on it."""
        now = time.time()
        try:
            await call(
                self.client.put_item, TableName=self.table,
                Item={"pk": s(f"delivery#{task_id}"), "sk": s("claim"), "holder": s(holder),
                      "lock_until": n(now + ttl_seconds), "expires_at": n(int(now + ttl_seconds) + 1)},
                ConditionExpression="attribute_not_exists(pk) OR holder = :h OR lock_until < :now",
                ExpressionAttributeValues={":h": s(holder), ":now": n(now)})
        except Exception as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    async def release_delivery(self, task_id: str, holder: str) -> None:
        try:
            await call(self.client.delete_item, TableName=self.table,
                       Key={"pk": s(f"delivery#{task_id}"), "sk": s("claim")},
                       ConditionExpression="holder = :h", ExpressionAttributeValues={":h": s(holder)})
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise

    # -- events ----------------------------------------------------------------------------------
    def _event_id(self) -> str:
        # Sortable across writers: nanoseconds, then this process's pid and counter break ties.
        self._seq += 1
        return f"{time.time_ns():020d}-{os.getpid() % 100_000:05d}{self._seq:08d}"

    async def publish(self, session_id: str, chunk: Chunk) -> str:
        event_id = self._event_id()
        await call(self.client.put_item, TableName=self.table,
                   Item={"pk": s(f"events#{session_id}"), "sk": s(event_id),
                         "chunk": s(chunk.model_dump_json(exclude={"id"})), "expires_at": self._expiry()})
        return event_id

    async def _events_after(self, session_id: str, after: str, limit: int = 100) -> list[Chunk]:
        res = await call(self.client.query, TableName=self.table,
                         KeyConditionExpression="pk = :pk AND sk > :after",
                         ExpressionAttributeValues={":pk": s(f"events#{session_id}"), ":after": s(after)},
                         ConsistentRead=True, Limit=limit)
        return [Chunk.model_validate_json(item["chunk"]["S"]).model_copy(update={"id": item["sk"]["S"]})
                for item in res.get("Items", [])]

    async def cursor(self, session_id: str) -> str:
        res = await call(self.client.query, TableName=self.table, KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": s(f"events#{session_id}")},
                         ScanIndexForward=False, Limit=1, ConsistentRead=True)
        items = res.get("Items", [])
        return str(items[0]["sk"]["S"]) if items else "0-0"

    async def subscribe(self, session_id: str, after_id: str | None = None) -> AsyncIterator[Chunk]:
        """Polls (DynamoDB has no blocking read) every ``poll_seconds``; heartbeats when idle."""
        last = after_id or "0-0"
        if last == "$":
            last = await self.cursor(session_id)
        idle_since = time.monotonic()
        while True:
            fresh = await self._events_after(session_id, last)
            for chunk in fresh:
                last = chunk.id or last
                yield chunk
            if fresh:
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since >= self.heartbeat_seconds:
                idle_since = time.monotonic()
                yield Chunk(type="heartbeat", content=None)
                continue
            await asyncio.sleep(self.poll_seconds)

    async def ping(self) -> None:
        # GetItem, not DescribeTable: the function's role holds item-level actions only.
        await call(self.client.get_item, TableName=self.table, Key={"pk": s("ping"), "sk": s("ping")})

    async def close(self) -> None:
        return None
