"""Redis Streams queue with a consumer group: the production queue on Redis/Valkey.

* ``submit`` is one Lua script, so one round trip records the idempotency key, writes the task
  record and XADDs the entry atomically: nothing is ever half-written.
* Workers read with XREADGROUP; an entry stays in the group's pending list (PEL) until XACKed.
  The lease is the entry's idle time: a live worker resets it with ``XCLAIM ... JUSTID``
  (heartbeat), and entries idle longer than ``claim_timeout_seconds`` are reclaimed by another
  worker with XAUTOCLAIM. So a dead worker's task is redelivered, a live one's never is.
* After ``max_attempts`` deliveries an entry moves to the ``<stream>:dlq`` stream
  (``agent-app dlq list|replay``). Delayed hand-backs wait in a ``<stream>:delayed`` sorted set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...core.models import Delivery, SubmitOutcome, Task
from ...core.ports import BackendUnavailable
from ..redis_tls import tls_options

# KEYS: idempotency key, task record, stream; ARGV: task id, task json, ttl s, request hash,
# '1' if an idempotency key is used, accept deadline (unix ms by the server's clock; '0' = none).
# -> {1, id} created, {0, "id|hash"} an earlier submit with this key, {-1, ''} too late: nothing written.
_SUBMIT = """
if ARGV[6] ~= '0' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[6]) then return {-1, ''} end
end
if ARGV[5] == '1' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {0, existing} end
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[4], 'EX', ARGV[3])
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('XADD', KEYS[3], '*', 'task', ARGV[2], 'attempts', '0')
return {1, ARGV[1]}
"""

_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  local attempts = string.sub(member, 1, sep - 1)
  redis.call('XADD', KEYS[2], '*', 'task', string.sub(member, sep + 1), 'attempts', attempts)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# KEYS: stream; ARGV: group, then entry ids. Reset each entry's idle time for the consumer that
# holds it (a lease taken over by another worker is left alone).
_EXTEND = """
local n = 0
for i = 2, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], p[1][2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
"""

_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisStreamsQueue:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        stream: str = "agent:tasks",
        group: str = "agent-workers",
        claim_timeout_seconds: float = 30.0,
        max_attempts: int = 3,
        accept_deadline_seconds: float = 2.0,
        clock_margin_seconds: float = 3.0,
    ) -> None:
        self.r: Any = client
        self.stream = stream
        self.group = group
        self.dlq = f"{stream}:dlq"
        self.delayed = f"{stream}:delayed"
        self.claim_timeout_ms = int(claim_timeout_seconds * 1000)
        self.max_attempts = max_attempts
        self.accept_deadline_seconds = accept_deadline_seconds
        """A submit that Redis runs later than this after the call (by Redis's clock: a stall, a
        backlog) writes nothing; the caller waits ``clock_margin_seconds`` longer than this for the
        answer, so when it gives up (503) the write can no longer happen: a 503 never runs."""
        self.clock_margin_seconds = clock_margin_seconds
        self._submit = self.r.register_script(_SUBMIT)
        self._promote = self.r.register_script(_PROMOTE)
        self._extend = self.r.register_script(_EXTEND)
        self._acks: list[tuple[str, asyncio.Future[None]]] = []
        self._ack_flusher: asyncio.Task[None] | None = None
        self._ack_loop: asyncio.AbstractEventLoop | None = None
        self._group_ready = False
        self._last_sweep = 0.0

    @classmethod
    def from_url(cls, url: str, ca_cert: str | None = None, **kwargs: Any) -> RedisStreamsQueue:
        return cls(aioredis.Redis.from_url(url, protocol=2, socket_timeout=10, socket_connect_timeout=3,
                                           **tls_options(url, ca_cert)), **kwargs)

    def _task_key(self, task_id: str) -> str:
        return f"{self.stream}:task:{task_id}"

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def submit(self, task: Task, idempotency_key: str | None, ttl_seconds: int) -> SubmitOutcome:
        """One script: the idempotency key, the task record and the stream entry, or nothing.

        Every answer is definite: the script refuses to write after the accept deadline, and we
        wait past the deadline (plus a clock margin) before answering 503. If the reply itself was
        lost after the script ran in time, one quick read of the task record tells (-> created)."""
        idem_key = f"{self.stream}:idem:{idempotency_key or ''}"
        deadline_ms = int((time.time() + self.accept_deadline_seconds) * 1000) if self.accept_deadline_seconds else 0
        try:
            async with asyncio.timeout(self.accept_deadline_seconds + self.clock_margin_seconds):
                res = await self._submit(
                    keys=[idem_key, self._task_key(task.id), self.stream],
                    args=[
                        task.id,
                        task.to_json(),
                        ttl_seconds,
                        task.request_hash or "",
                        "1" if idempotency_key else "0",
                        deadline_ms,
                    ],
                )
        except (*_ERRORS, TimeoutError) as exc:
            if await self._recorded(task.id):
                return SubmitOutcome(task=task, created=True)
            raise BackendUnavailable(f"redis: task not recorded: {type(exc).__name__}: {exc}") from exc
        created, value = int(res[0]), _s(res[1])
        if created == -1:
            raise BackendUnavailable(
                f"redis: task not recorded: Redis ran the submit after its {self.accept_deadline_seconds:g}s deadline"
            )
        if created:
            return SubmitOutcome(task=task, created=True)
        original_id, _, original_hash = value.partition("|")
        original = await self.get(original_id) or task.model_copy(update={"id": original_id})
        return SubmitOutcome(task=original, created=False, conflict=original_hash != (task.request_hash or ""))

    async def _recorded(self, task_id: str) -> bool:
        """After a lost or late reply: is the task record there? False if Redis cannot tell in 1 s
        (then it is still stalled and the submit, when it runs, finds its deadline passed)."""
        try:
            async with asyncio.timeout(1.0):
                return bool(await self.r.exists(self._task_key(task_id)))
        except (*_ERRORS, TimeoutError, RedisError):
            return False

    async def get(self, task_id: str) -> Task | None:
        try:
            raw = await self.r.get(self._task_key(task_id))
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis: {exc}") from exc
        return Task.from_json(raw) if raw else None

    def _sweep_interval(self) -> float:
        """Seconds between reclaim sweeps: a tenth of the claim timeout, between 0.1 s and 1 s,
        so a dead worker's entries are picked up at most ~10% after their lease lapses."""
        return min(1.0, max(0.1, self.claim_timeout_ms / 10_000))

    async def claim(self, worker_id: str, lease_seconds: float, block_seconds: float = 1.0) -> Delivery | None:
        got = await self.claim_many(worker_id, 1, lease_seconds, block_seconds)
        return got[0] if got else None

    async def claim_many(
        self, worker_id: str, count: int, lease_seconds: float, block_seconds: float = 1.0
    ) -> list[Delivery]:
        """Up to ``count`` deliveries in one round trip (``XREADGROUP COUNT``); stale entries of dead
        workers (``XAUTOCLAIM``) come first. Empty if nothing arrived within ``block_seconds``."""
        count = max(1, count)
        try:
            await self._ensure_group()
            now = time.monotonic()
            out: list[Delivery] = []
            if now - self._last_sweep >= self._sweep_interval():
                self._last_sweep = now
                await self._promote(keys=[self.delayed, self.stream], args=[time.time()])
                out = await self._reclaim(worker_id, count)
                if out:
                    return out
            got = await self.r.xreadgroup(
                self.group,
                worker_id,
                {self.stream: ">"},
                count=count,
                block=max(1, int(min(block_seconds, self._sweep_interval()) * 1000)),
            )
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis: {exc}") from exc
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
                return []
            raise
        if not got:
            return []
        return [self._delivery(entry_id, fields, delivered=1) for entry_id, fields in got[0][1]]

    async def _reclaim(self, worker_id: str, count: int) -> list[Delivery]:
        """Entries idle longer than the claim timeout (their worker died), up to ``count``."""
        out: list[Delivery] = []
        start = "0-0"
        while len(out) < count:
            res = await self.r.xautoclaim(
                self.stream,
                self.group,
                worker_id,
                min_idle_time=self.claim_timeout_ms,
                start_id=start,
                count=count - len(out),
            )
            start, entries = _s(res[0]), res[1]
            if not entries:
                break
            for entry_id, fields in entries:
                if fields is None:  # deleted meanwhile
                    await self.r.xack(self.stream, self.group, entry_id)
                    continue
                pending = await self.r.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
                delivered = int(pending[0]["times_delivered"]) if pending else 2
                delivery = self._delivery(entry_id, fields, delivered=delivered)
                if delivery.attempt > self.max_attempts:
                    await self._to_dlq(entry_id, delivery.task, delivery.attempt - 1)
                    continue
                out.append(delivery)
            if start == "0-0":
                break
        return out

    def _delivery(self, entry_id: Any, fields: dict[Any, Any], *, delivered: int) -> Delivery:
        data = {_s(k): _s(v) for k, v in fields.items()}
        previous = int(data.get("attempts", "0"))
        task = Task.from_json(data["task"])
        attempt = previous + delivered
        return Delivery(task=task.model_copy(update={"attempts": attempt}), receipt=_s(entry_id), attempt=attempt)

    async def _to_dlq(self, entry_id: str, task: Task, attempts: int) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dlq, {"task": task.to_json(), "attempts": str(attempts), "failed_at": str(time.time())})
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()

    async def extend(self, delivery: Delivery, lease_seconds: float) -> None:
        await self.extend_many([delivery], lease_seconds)

    async def extend_many(self, deliveries: Sequence[Delivery], lease_seconds: float) -> None:
        """Heartbeat for every lease a worker holds, in one script call."""
        if not deliveries:
            return
        try:
            await self._extend(keys=[self.stream], args=[self.group, *(d.receipt for d in deliveries)])
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis: {exc}") from exc

    async def ack(self, delivery: Delivery) -> None:
        """XACK + XDEL; acks of concurrent runs made in the same event-loop tick (or while a batch
        is in flight) share one MULTI (each caller still waits for its own)."""
        loop = asyncio.get_running_loop()
        if self._ack_loop is not loop:
            self._ack_loop, self._acks, self._ack_flusher = loop, [], None
        fut: asyncio.Future[None] = loop.create_future()
        self._acks.append((delivery.receipt, fut))
        if self._ack_flusher is None or self._ack_flusher.done():
            self._ack_flusher = loop.create_task(self._flush_acks())
        await fut

    async def _flush_acks(self) -> None:
        await asyncio.sleep(0)
        while self._acks:
            batch, self._acks = self._acks, []
            ids = [receipt for receipt, _fut in batch]
            err: BaseException | None = None
            try:
                async with self.r.pipeline(transaction=True) as pipe:
                    pipe.xack(self.stream, self.group, *ids)
                    pipe.xdel(self.stream, *ids)
                    await pipe.execute()
            except _ERRORS as exc:
                err = BackendUnavailable(f"redis: {exc}")
            except Exception as exc:
                err = exc
            for _receipt, fut in batch:
                if fut.done():
                    continue
                if err is not None:
                    fut.set_exception(err)
                else:
                    fut.set_result(None)

    async def release(self, delivery: Delivery, delay_seconds: float = 0.0, count_attempt: bool = True) -> None:
        attempts = delivery.attempt if count_attempt else delivery.attempt - 1
        task = delivery.task
        async with self.r.pipeline(transaction=True) as pipe:
            if attempts >= self.max_attempts:
                pipe.xadd(
                    self.dlq,
                    {"task": task.to_json(), "attempts": str(attempts), "failed_at": str(time.time())},
                )
            elif delay_seconds > 0:
                pipe.zadd(self.delayed, {f"{attempts}|{task.to_json()}": time.time() + delay_seconds})
            else:
                pipe.xadd(self.stream, {"task": task.to_json(), "attempts": str(attempts)})
            pipe.xack(self.stream, self.group, delivery.receipt)
            pipe.xdel(self.stream, delivery.receipt)
            await pipe.execute()

    async def dead_letters(self, limit: int = 100) -> Sequence[Task]:
        entries = await self.r.xrange(self.dlq, count=limit)
        out = []
        for _entry_id, fields in entries:
            data = {_s(k): _s(v) for k, v in fields.items()}
            out.append(Task.from_json(data["task"]).model_copy(update={"attempts": int(data.get("attempts", 0))}))
        return out

    async def replay(self, task_id: str | None = None) -> int:
        count = 0
        for entry_id, fields in await self.r.xrange(self.dlq):
            data = {_s(k): _s(v) for k, v in fields.items()}
            task = Task.from_json(data["task"])
            if task_id and task.id != task_id:
                continue
            async with self.r.pipeline(transaction=True) as pipe:
                pipe.xadd(self.stream, {"task": task.to_json(), "attempts": "0"})
                pipe.xdel(self.dlq, entry_id)
                await pipe.execute()
            count += 1
        return count

    async def depth(self) -> int:
        """Entries waiting or in flight (for autoscaling metrics)."""
        return int(await self.r.xlen(self.stream))

    async def ping(self) -> None:
        try:
            await self.r.ping()
        except (*_ERRORS, RedisError) as exc:
            raise BackendUnavailable(f"redis: {exc}") from exc

    async def close(self) -> None:
        await self.r.aclose()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
