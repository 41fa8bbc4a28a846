"""In-process queue: the embedded default of ``agent-app serve``. Real leases, retries and DLQ,
but it lives and dies with the process (use Redis or SQS for durability across restarts)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Sequence

from ...core.models import Delivery, SubmitOutcome, Task


class MemoryQueue:
    def __init__(self, max_attempts: int = 3) -> None:
        self.max_attempts = max_attempts
        self._tasks: dict[str, Task] = {}
        self._idem: dict[str, tuple[str, float]] = {}
        self._ready: deque[tuple[str, int]] = deque()
        self._delayed: list[tuple[float, str, int]] = []
        self._leases: dict[str, tuple[str, float, int]] = {}
        self._dlq: dict[str, Task] = {}
        self._wake = asyncio.Event()

    async def submit(self, task: Task, idempotency_key: str | None, ttl_seconds: int) -> SubmitOutcome:
        now = time.time()
        if idempotency_key:
            seen = self._idem.get(idempotency_key)
            if seen and seen[1] > now and seen[0] in self._tasks:
                original = self._tasks[seen[0]]
                return SubmitOutcome(task=original, created=False, conflict=original.request_hash != task.request_hash)
            self._idem[idempotency_key] = (task.id, now + ttl_seconds)
        self._tasks[task.id] = task
        self._ready.append((task.id, 0))
        self._wake.set()
        return SubmitOutcome(task=task, created=True)

    async def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id) or self._dlq.get(task_id)

    def _reclaim(self) -> None:
        now = time.monotonic()
        for receipt, (task_id, deadline, attempt) in list(self._leases.items()):
            if deadline <= now:
                del self._leases[receipt]
                self._requeue(task_id, attempt)
        due = [d for d in self._delayed if d[0] <= now]
        for item in due:
            self._delayed.remove(item)
            self._ready.append((item[1], item[2]))

    def _requeue(self, task_id: str, attempts: int) -> None:
        if attempts >= self.max_attempts:
            task = self._tasks.pop(task_id, None)
            if task is not None:
                self._dlq[task_id] = task.model_copy(update={"attempts": attempts})
            return
        self._ready.append((task_id, attempts))

    async def claim(self, worker_id: str, lease_seconds: float, block_seconds: float = 1.0) -> Delivery | None:
        deadline = time.monotonic() + block_seconds
        while True:
            self._reclaim()
            while self._ready:
                task_id, attempts = self._ready.popleft()
                task = self._tasks.get(task_id)
                if task is None:
                    continue
                receipt = uuid.uuid4().hex
                self._leases[receipt] = (task_id, time.monotonic() + lease_seconds, attempts + 1)
                return Delivery(task=task, receipt=receipt, attempt=attempts + 1)
            wait = min(deadline - time.monotonic(), 0.2)
            if wait <= 0:
                return None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def extend(self, delivery: Delivery, lease_seconds: float) -> None:
        lease = self._leases.get(delivery.receipt)
        if lease is not None:
            self._leases[delivery.receipt] = (lease[0], time.monotonic() + lease_seconds, lease[2])

    async def ack(self, delivery: Delivery) -> None:
        self._leases.pop(delivery.receipt, None)

    async def release(self, delivery: Delivery, delay_seconds: float = 0.0, count_attempt: bool = True) -> None:
        lease = self._leases.pop(delivery.receipt, None)
        if lease is None:
            return
        attempts = lease[2] if count_attempt else lease[2] - 1
        if attempts >= self.max_attempts:
            self._requeue(lease[0], attempts)
        elif delay_seconds > 0:
            self._delayed.append((time.monotonic() + delay_seconds, lease[0], attempts))
        else:
            self._ready.append((lease[0], attempts))
        self._wake.set()

    async def dead_letters(self, limit: int = 100) -> Sequence[Task]:
        return list(self._dlq.values())[:limit]

    async def replay(self, task_id: str | None = None) -> int:
        ids = [task_id] if task_id else list(self._dlq)
        count = 0
        for tid in ids:
            task = self._dlq.pop(tid, None)
            if task is not None:
                self._tasks[tid] = task
                self._ready.append((tid, 0))
                count += 1
        self._wake.set()
        return count

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
