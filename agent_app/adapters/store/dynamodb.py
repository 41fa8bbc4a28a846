"""Tasks, results and the callback outbox in the DynamoDB state table (the serverless task store).

Lambda has no durable local disk and the serverless topology has no SQL database, so the record
the API reads (``GET /v1/tasks/{id}``) and the worker writes lives in the same table as session
state (:mod:`agent_infra.agent_app.adapters.state.dynamodb` describes the layout), with these items:

* ``task#<id>`` / ``record``: the task (``data``, JSON), its ``status`` and ``runs``;
  ``finish`` is a conditional update (only while not terminal), so a redelivered task records
  one result however many times it ran - the same guarantee as the SQL store.
* ``outbox`` / ``msg_<task id>``: one callback. All callbacks share one partition so
  ``due_callbacks`` is a Query (the function's role has no Scan). One partition takes about 1,000
  writes a second, far above a serverless agent's callback rate; delivered callbacks expire with
  the TTL.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ...core.models import TERMINAL, RunStatus, Task
from ..state.dynamodb import call, is_conditional_failure, make_client, n, num, s, text

_TERMINAL_VALUES = {":t" + str(i): s(v.value) for i, v in enumerate(sorted(TERMINAL))}
_NOT_TERMINAL = f"NOT (#st IN ({', '.join(_TERMINAL_VALUES)}))"


class DynamoStore:
    """:class:`~agent_app.core.ports.TaskStore` on DynamoDB. ``DynamoStore(settings)`` or explicit args."""

    def __init__(self, settings: Any = None, *, table: str | None = None, ttl_seconds: int | None = None,
                 client: Any = None) -> None:
        self.table = table or (settings.state_table if settings is not None else None) or ""
        if not self.table:
            raise ValueError("the DynamoDB task store needs AGENT_STATE_TABLE")
        # Results and callbacks stay readable at least as long as idempotency keys (24 h).
        self.ttl = max(ttl_seconds or (settings.state_ttl_seconds if settings is not None else 86_400), 86_400) * 7
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client("dynamodb")
        return self._client

    def _key(self, task_id: str) -> dict[str, Any]:
        return {"pk": s(f"task#{task_id}"), "sk": s("record")}

    def _item(self, task: Task, status: RunStatus, runs: int, worker_id: str | None = None) -> dict[str, Any]:
        data = task.model_copy(update={"status": status, "updated_at": time.time()})
        item = {**self._key(task.id), "data": s(data.to_json()), "status": s(status.value), "runs": n(runs),
                "expires_at": n(int(time.time() + self.ttl))}
        if worker_id:
            item["worker_id"] = s(worker_id)
        return item

    async def init(self) -> None:
        """Nothing to create: the table belongs to the infrastructure (``SessionTable``)."""
        return None

    async def _read(self, task_id: str) -> dict[str, Any] | None:
        res = await call(self.client.get_item, TableName=self.table, Key=self._key(task_id), ConsistentRead=True)
        item: dict[str, Any] | None = res.get("Item")
        return item

    @staticmethod
    def _task(item: dict[str, Any]) -> Task:
        return Task.from_json(item["data"]["S"]).model_copy(update={"status": RunStatus(item["status"]["S"])})

    async def upsert(self, task: Task) -> None:
        current = await self._read(task.id)
        await call(self.client.put_item, TableName=self.table,
                   Item=self._item(task, task.status, int(num(current, "runs")) if current else 0))

    async def get(self, task_id: str) -> Task | None:
        item = await self._read(task_id)
        return self._task(item) if item else None

    async def start(self, task: Task, worker_id: str) -> Task | None:
        for _ in range(5):
            current = await self._read(task.id)
            if current is not None and RunStatus(current["status"]["S"]).terminal:
                return self._task(current)
            runs = int(num(current, "runs")) + 1 if current else 1
            item = self._item(task, RunStatus.running, runs, worker_id)
            try:
                if current is None:
                    await call(self.client.put_item, TableName=self.table, Item=item,
                               ConditionExpression="attribute_not_exists(pk)")
                else:
                    await call(self.client.put_item, TableName=self.table, Item=item,
                               ConditionExpression=f"runs = :r AND {_NOT_TERMINAL}",
                               ExpressionAttributeNames={"#st": "status"},
                               ExpressionAttributeValues={":r": current["runs"], **_TERMINAL_VALUES})
            except Exception as exc:
                if is_conditional_failure(exc):
                    continue  # someone else moved it: read again
                raise
            return task.model_copy(update={"status": RunStatus.running})
        return await self.get(task.id)

    async def finish(self, task_id: str, status: RunStatus, result: str | None, error: str | None,
                     steps: list[dict[str, Any]]) -> bool:
        current = await self._read(task_id)
        if current is None:
            return False
        done = self._task(current).model_copy(
            update={"status": status, "result": result, "error": error, "steps": steps, "updated_at": time.time()})
        try:
            await call(self.client.update_item, TableName=self.table, Key=self._key(task_id),
                       UpdateExpression="SET #st = :status, #d = :data",
                       ConditionExpression=_NOT_TERMINAL,
                       ExpressionAttributeNames={"#st": "status", "#d": "data"},
                       ExpressionAttributeValues={":status": s(status.value), ":data": s(done.to_json()),
                                                  **_TERMINAL_VALUES})
        except Exception as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    async def runs(self, task_id: str) -> int:
        """How many times a worker started the task (diagnostics and tests)."""
        item = await self._read(task_id)
        return int(num(item, "runs")) if item else 0

    # -- callback outbox -------------------------------------------------------------------------
    def _cb_key(self, callback_id: str) -> dict[str, Any]:
        return {"pk": s("outbox"), "sk": s(callback_id)}

    async def schedule_callback(self, task_id: str, url: str, payload: dict[str, Any], next_at: float) -> None:
        callback_id = f"msg_{task_id}"
        try:
            await call(self.client.put_item, TableName=self.table, ConditionExpression="attribute_not_exists(pk)",
                       Item={**self._cb_key(callback_id), "task_id": s(task_id), "url": s(url),
                             "payload": s(json.dumps(payload, default=str)), "status": s("pending"),
                             "attempts": n(0), "next_at": n(float(next_at)), "created_at": n(time.time()),
                             "expires_at": n(int(time.time() + self.ttl))})
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise

    @staticmethod
    def _callback(item: dict[str, Any]) -> dict[str, Any]:
        return {"id": item["sk"]["S"], "task_id": text(item, "task_id"), "url": text(item, "url"),
                "payload": json.loads(text(item, "payload") or "{}"), "status": text(item, "status"),
                "attempts": int(num(item, "attempts")), "next_at": num(item, "next_at"),
                "last_error": text(item, "last_error"), "created_at": num(item, "created_at")}

    async def due_callbacks(self, now: float, limit: int = 50) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while len(out) < limit:
            res = await call(self.client.query, TableName=self.table, KeyConditionExpression="pk = :pk",
                             FilterExpression="#st = :pending AND next_at <= :now",
                             ExpressionAttributeNames={"#st": "status"},
                             ExpressionAttributeValues={":pk": s("outbox"), ":pending": s("pending"),
                                                        ":now": n(float(now))},
                             ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
            out += [self._callback(item) for item in res.get("Items", [])]
            start = res.get("LastEvaluatedKey")
            if not start:
                break
        return sorted(out, key=lambda r: r["next_at"])[:limit]

    async def claim_callback(self, callback_id: str, lease_until: float, seen_next_at: float) -> bool:
        """Compare-and-set on ``next_at`` so two workers never deliver the same attempt."""
        try:
            await call(self.client.update_item, TableName=self.table, Key=self._cb_key(callback_id),
                       UpdateExpression="SET next_at = :lease",
                       ConditionExpression="#st = :pending AND next_at = :seen",
                       ExpressionAttributeNames={"#st": "status"},
                       ExpressionAttributeValues={":lease": n(float(lease_until)), ":pending": s("pending"),
                                                  ":seen": n(float(seen_next_at))})
        except Exception as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    async def callback_attempted(self, callback_id: str, *, delivered: bool, give_up: bool, next_at: float | None,
                                 last_error: str | None) -> None:
        status = "delivered" if delivered else ("failed" if give_up else "pending")
        expr = "SET #st = :status, attempts = attempts + :one, last_error = :err"
        values: dict[str, Any] = {":status": s(status), ":one": n(1),
                                  ":err": s(last_error) if last_error is not None else {"NULL": True}}
        if next_at is not None:
            expr += ", next_at = :next"
            values[":next"] = n(float(next_at))
        await call(self.client.update_item, TableName=self.table, Key=self._cb_key(callback_id),
                   UpdateExpression=expr, ExpressionAttributeNames={"#st": "status"},
                   ExpressionAttributeValues=values)

    async def callback_status(self, task_id: str) -> dict[str, Any] | None:
        res = await call(self.client.get_item, TableName=self.table, Key=self._cb_key(f"msg_{task_id}"),
                         ConsistentRead=True)
        item = res.get("Item")
        return self._callback(item) if item else None

    async def ping(self) -> None:
        await call(self.client.get_item, TableName=self.table, Key={"pk": s("ping"), "sk": s("ping")})

    async def close(self) -> None:
        return None
