"""Session state, run locks and event streams in Redis, everything with a TTL.

Events go to a per-session stream ``agent:events:<session>`` (capped, expiring), so any API
instance can stream a run executing on any worker, and a reconnecting client resumes with
XREAD from the last event id it saw.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_app.core.models import Chunk
from agent_app.core.ports import BackendUnavailable

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
_INTERRUPT = """
local holder = redis.call('GET', KEYS[1])
if holder then redis.call('SET', KEYS[2], holder, 'EX', ARGV[1]) end
return holder
"""
_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisState:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "agent",
        ttl_seconds: int = 86_400,
        heartbeat_seconds: float = 15.0,
        max_events: int = 1_000,
    ) -> None:
        self.r: Any = client
        self.prefix = prefix
        self.ttl = ttl_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.max_events = max_events
        self._acquire = self.r.register_script(_ACQUIRE)
        self._release = self.r.register_script(_RELEASE)
        self._interrupt = self.r.register_script(_INTERRUPT)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisState:
        return cls(aioredis.Redis.from_url(url, protocol=2, socket_connect_timeout=3), **kwargs)

    def _k(self, kind: str, ident: str) -> str:
        return f"{self.prefix}:{kind}:{ident}"

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._call(self.r.get(self._k("session", session_id)))
        return json.loads(raw) if raw else None

    async def put_session(self, session_id: str, state: dict[str, Any], ttl_seconds: int) -> None:
        await self._call(self.r.set(self._k("session", session_id), json.dumps(state), ex=ttl_seconds))

    async def acquire_run(self, session_id: str, task_id: str, ttl_seconds: float) -> bool:
        res = await self._call(
            self._acquire(keys=[self._k("lock", session_id)], args=[task_id, int(ttl_seconds * 1000)])
        )
        return bool(int(res))

    async def release_run(self, session_id: str, task_id: str) -> None:
        await self._call(self._release(keys=[self._k("lock", session_id)], args=[task_id]))

    async def active_run(self, session_id: str) -> str | None:
        raw = await self._call(self.r.get(self._k("lock", session_id)))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def request_interrupt(self, session_id: str) -> None:
        await self._call(
            self._interrupt(keys=[self._k("lock", session_id), self._k("interrupt", session_id)], args=[self.ttl])
        )

    async def interrupted(self, session_id: str, task_id: str) -> bool:
        raw = await self._call(self.r.get(self._k("interrupt", session_id)))
        return raw is not None and (raw.decode() if isinstance(raw, bytes) else raw) == task_id

    async def publish(self, session_id: str, chunk: Chunk) -> str:
        key = self._k("events", session_id)
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.xadd(
                key,
                {"chunk": chunk.model_dump_json(exclude={"id"})},
                maxlen=self.max_events,
                approximate=True,
            )
            pipe.expire(key, self.ttl)
            res = await self._call(pipe.execute())
        event_id = res[0]
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    async def cursor(self, session_id: str) -> str:
        newest = await self._call(self.r.xrevrange(self._k("events", session_id), count=1))
        return _s(newest[0][0]) if newest else "0-0"

    async def subscribe(self, session_id: str, after_id: str | None = None) -> AsyncIterator[Chunk]:
        key = self._k("events", session_id)
        last = after_id or "0-0"
        if last == "$":
            newest = await self._call(self.r.xrevrange(key, count=1))
            last = _s(newest[0][0]) if newest else "0-0"
        while True:
            got = await self._call(self.r.xread({key: last}, count=100, block=int(self.heartbeat_seconds * 1000)))
            if not got:
                yield Chunk(type="heartbeat", content=None)
                continue
            for entry_id, fields in got[0][1]:
                last = _s(entry_id)
                data = {_s(k): _s(v) for k, v in fields.items()}
                yield Chunk.model_validate_json(data["chunk"]).model_copy(update={"id": last})

    async def ping(self) -> None:
        try:
            await self.r.ping()
        except (*_ERRORS, RedisError) as exc:
            raise BackendUnavailable(f"redis: {exc}") from exc

    async def close(self) -> None:
        await self.r.aclose()

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis: {exc}") from exc


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
