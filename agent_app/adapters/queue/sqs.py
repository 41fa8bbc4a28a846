"""Amazon SQS task queue (standard queue + DLQ): the queue of the serverless topology, usable by
the container worker too.

* ``submit``: the task record and the idempotency key are written to DynamoDB (the state table,
  ``AGENT_STATE_TABLE``) in one transaction, then the task is sent. The record holds
  ``enqueued=false`` until the send succeeded, so a client retrying with the same key after a failed
  send gets the task sent again instead of a task that never runs. Without a table the records
  live in this process only (fine for one container, not for Lambda).
* Leases are SQS's visibility timeout (whole seconds, rounded up); ``extend`` is
  ``ChangeMessageVisibility``, so a long run is not redelivered while its worker is alive.
* Attempts: SQS's ``ApproximateReceiveCount`` plus the ``attempts`` message attribute a hand-back
  carries. ``release`` deletes and re-sends (with ``DelaySeconds``), so an uncounted hand-back
  (shutdown, busy session) never pushes a task towards the DLQ.
* Dead letters: after ``max_attempts`` a task is moved to ``AGENT_QUEUE_DLQ_URL`` by the adapter;
  the queue's own redrive policy (``maxReceiveCount``) stays the backstop for crashed consumers
  (and is what Lambda's event source mapping relies on). ``dead_letters`` peeks without consuming;
  ``replay`` moves messages back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

from ...core.models import Delivery, SubmitOutcome, Task
from ..state.dynamodb import call, is_conditional_failure, make_client, n, num, s, text

_MAX_DELAY = 900  # SQS DelaySeconds limit


class SqsQueue:
    """:class:`~agent_app.core.ports.TaskQueue` on SQS. ``SqsQueue(settings)`` or explicit args."""

    def __init__(
        self,
        settings: Any = None,
        *,
        queue_url: str | None = None,
        dlq_url: str | None = None,
        table: str | None = None,
        max_attempts: int | None = None,
        sqs_client: Any = None,
        dynamodb_client: Any = None,
    ) -> None:
        self.queue_url = queue_url or (settings.queue_url if settings is not None else None) or ""
        if not self.queue_url:
            raise ValueError("AGENT_QUEUE_BACKEND=sqs needs AGENT_QUEUE_URL")
        self.dlq_url = dlq_url or (settings.queue_dlq_url if settings is not None else None)
        self.table = table or (settings.state_table if settings is not None else None)
        self.max_attempts = max_attempts or (settings.queue_max_attempts if settings is not None else 3)
        self._sqs = sqs_client
        self._ddb = dynamodb_client
        self._local: dict[str, Task] = {}
        self._local_idem: dict[str, tuple[str, str, float]] = {}

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = make_client("sqs")
        return self._sqs

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            self._ddb = make_client("dynamodb")
        return self._ddb

    # -- records ---------------------------------------------------------------------------------
    async def _send(self, task: Task, attempts: int = 0, delay_seconds: float = 0.0, url: str | None = None) -> None:
        await call(self.sqs.send_message, QueueUrl=url or self.queue_url, MessageBody=task.to_json(),
                   DelaySeconds=min(_MAX_DELAY, math.ceil(delay_seconds)),
                   MessageAttributes={"attempts": {"DataType": "Number", "StringValue": str(attempts)}})

    async def _mark_enqueued(self, task_id: str) -> None:
        if self.table:
            await call(self.ddb.update_item, TableName=self.table,
                       Key={"pk": s(f"task#{task_id}"), "sk": s("queued")},
                       UpdateExpression="SET enqueued = :t", ExpressionAttributeValues={":t": {"BOOL": True}})

    async def submit(self, task: Task, idempotency_key: str | None, ttl_seconds: int) -> SubmitOutcome:
        if not self.table:
            return await self._submit_local(task, idempotency_key, ttl_seconds)
        now = time.time()
        expires = n(int(now + ttl_seconds))
        record = {"pk": s(f"task#{task.id}"), "sk": s("queued"), "task": s(task.to_json()),
                  "enqueued": {"BOOL": False}, "expires_at": expires}
        items: list[dict[str, Any]] = [{"Put": {"TableName": self.table, "Item": record}}]
        if idempotency_key:
            items.append({"Put": {
                "TableName": self.table,
                "Item": {"pk": s(f"idem#{idempotency_key}"), "sk": s("idem"), "task_id": s(task.id),
                         "request_hash": s(task.request_hash or ""), "expires_at": expires},
                "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                "ExpressionAttributeValues": {":now": n(int(now))}}})
        try:
            await call(self.ddb.transact_write_items, TransactItems=items)
        except Exception as exc:
            if not (idempotency_key and is_conditional_failure(exc)):
                raise
            return await self._replayed(task, idempotency_key)
        await self._send(task)
        await self._mark_enqueued(task.id)
        return SubmitOutcome(task=task, created=True)

    async def _replayed(self, task: Task, idempotency_key: str) -> SubmitOutcome:
        res = await call(self.ddb.get_item, TableName=self.table, ConsistentRead=True,
                         Key={"pk": s(f"idem#{idempotency_key}"), "sk": s("idem")})
        item = res.get("Item") or {}
        original_id = text(item, "task_id") or task.id
        conflict = (text(item, "request_hash") or "") != (task.request_hash or "")
        rec = await call(self.ddb.get_item, TableName=self.table, ConsistentRead=True,
                         Key={"pk": s(f"task#{original_id}"), "sk": s("queued")})
        rec_item = rec.get("Item")
        original = Task.from_json(rec_item["task"]["S"]) if rec_item else task.model_copy(update={"id": original_id})
        if rec_item and not rec_item.get("enqueued", {}).get("BOOL", True) and not conflict:
            # The first submit recorded the task but its send failed: send it now.
            await self._send(original)
            await self._mark_enqueued(original.id)
        return SubmitOutcome(task=original, created=False, conflict=conflict)

    async def _submit_local(self, task: Task, idempotency_key: str | None, ttl_seconds: int) -> SubmitOutcome:
        now = time.time()
        if idempotency_key:
            seen = self._local_idem.get(idempotency_key)
            if seen and seen[2] > now:
                original = self._local.get(seen[0]) or task.model_copy(update={"id": seen[0]})
                return SubmitOutcome(task=original, created=False, conflict=seen[1] != (task.request_hash or ""))
            self._local_idem[idempotency_key] = (task.id, task.request_hash or "", now + ttl_seconds)
        self._local[task.id] = task
        await self._send(task)
        return SubmitOutcome(task=task, created=True)

    async def get(self, task_id: str) -> Task | None:
        if not self.table:
            return self._local.get(task_id)
        res = await call(self.ddb.get_item, TableName=self.table, ConsistentRead=True,
                         Key={"pk": s(f"task#{task_id}"), "sk": s("queued")})
        item = res.get("Item")
        if item is None or num(item, "expires_at", float("inf")) < time.time():
            return None
        return Task.from_json(item["task"]["S"])

    # -- consume ---------------------------------------------------------------------------------
    async def claim(self, worker_id: str, lease_seconds: float, block_seconds: float = 1.0) -> Delivery | None:
        deadline = time.monotonic() + block_seconds
        while True:
            remaining = deadline - time.monotonic()
            res = await call(self.sqs.receive_message, QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                             VisibilityTimeout=max(1, math.ceil(lease_seconds)),
                             WaitTimeSeconds=min(20, int(remaining)) if remaining >= 1 else 0,
                             MessageSystemAttributeNames=["ApproximateReceiveCount"],
                             MessageAttributeNames=["attempts"])
            for message in res.get("Messages", []):
                delivery = self.delivery_of(message)
                if delivery.attempt > self.max_attempts:
                    # Redelivered by an expired lease more often than allowed (its worker kept dying).
                    await self._dead_letter(delivery, delivery.attempt - 1)
                    continue
                return delivery
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    @staticmethod
    def delivery_of(message: dict[str, Any]) -> Delivery:
        """A received message (``receive_message`` shape) as a Delivery; attempt = carried + received."""
        carried = int(message.get("MessageAttributes", {}).get("attempts", {}).get("StringValue", "0"))
        received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        task = Task.from_json(message["Body"])
        attempt = carried + received
        return Delivery(task=task.model_copy(update={"attempts": attempt}), receipt=message["ReceiptHandle"],
                        attempt=attempt)

    async def extend(self, delivery: Delivery, lease_seconds: float) -> None:
        await call(self.sqs.change_message_visibility, QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt,
                   VisibilityTimeout=max(1, math.ceil(lease_seconds)))

    async def ack(self, delivery: Delivery) -> None:
        await call(self.sqs.delete_message, QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt)

    async def release(self, delivery: Delivery, delay_seconds: float = 0.0, count_attempt: bool = True) -> None:
        attempts = delivery.attempt if count_attempt else delivery.attempt - 1
        if attempts >= self.max_attempts:
            await self._dead_letter(delivery, attempts)
            return
        await self._send(delivery.task, attempts, delay_seconds)
        await self.ack(delivery)

    async def _dead_letter(self, delivery: Delivery, attempts: int) -> None:
        if self.dlq_url:
            await self._send(delivery.task.model_copy(update={"attempts": attempts}), attempts, url=self.dlq_url)
        await self.ack(delivery)

    # -- dead letters ----------------------------------------------------------------------------
    async def _peek_dlq(self, limit: int) -> list[dict[str, Any]]:
        """Messages on the DLQ without consuming them (received with a zero visibility timeout)."""
        if not self.dlq_url:
            return []
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(max(3, limit // 10 + 2)):
            res = await call(self.sqs.receive_message, QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                             VisibilityTimeout=0, WaitTimeSeconds=0, MessageAttributeNames=["attempts"])
            fresh = [m for m in res.get("Messages", []) if m["MessageId"] not in seen]
            if not fresh:
                break
            seen.update({m["MessageId"]: m for m in fresh})
            if len(seen) >= limit:
                break
        return list(seen.values())[:limit]

    async def dead_letters(self, limit: int = 100) -> Sequence[Task]:
        out = []
        for message in await self._peek_dlq(limit):
            carried = int(message.get("MessageAttributes", {}).get("attempts", {}).get("StringValue", "0"))
            out.append(Task.from_json(message["Body"]).model_copy(update={"attempts": carried}))
        return out

    async def replay(self, task_id: str | None = None) -> int:
        """Redrive one (or every) dead-lettered task to the queue with a fresh attempt count."""
        if not self.dlq_url:
            return 0
        count = 0
        skipped: set[str] = set()
        for _ in range(100):
            res = await call(self.sqs.receive_message, QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                             VisibilityTimeout=30, WaitTimeSeconds=0)
            messages = res.get("Messages", [])
            if not messages or all(m["MessageId"] in skipped for m in messages):
                for message in messages:
                    await call(self.sqs.change_message_visibility, QueueUrl=self.dlq_url,
                               ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
                break
            for message in messages:
                task = Task.from_json(message["Body"])
                if task_id and task.id != task_id:
                    skipped.add(message["MessageId"])
                    await call(self.sqs.change_message_visibility, QueueUrl=self.dlq_url,
                               ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
                    continue
                await self._send(task.model_copy(update={"attempts": 0}))
                await call(self.sqs.delete_message, QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                count += 1
            if task_id and count:
                break
        return count

    async def depth(self) -> int:
        """Messages waiting (for autoscaling metrics)."""
        res = await call(self.sqs.get_queue_attributes, QueueUrl=self.queue_url,
                         AttributeNames=["ApproximateNumberOfMessages"])
        return int(res["Attributes"]["ApproximateNumberOfMessages"])

    async def ping(self) -> None:
        await call(self.sqs.get_queue_attributes, QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    async def close(self) -> None:
        return None
