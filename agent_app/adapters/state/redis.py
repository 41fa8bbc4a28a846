"""Session state, run locks and event streams in Redis, everything with a TTL.

Events go to a per-session stream ``agent:events:<session>`` (capped, expiring), so any API
instance can stream a run executing on any worker, and a reconnecting client resumes with
XREAD from the last event id it saw.

Worker hot path (:meth:`RedisState.begin_run`, :meth:`RedisState.publish_nowait`,
:meth:`RedisState.interrupted`, :meth:`RedisState.end_run`): commands issued by concurrent runs
in the same event-loop tick leave in one pipeline (:class:`_Batcher`, auto-pipelining), events
of all runs are appended by one Lua call per flush, and a run's start (lock, run counter,
session state, ``running`` event) and end (final event, session state, unlock) are one script
each. Order is kept: batches are sent one after another, in the order the calls were made.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...core.models import Chunk
from ...core.ports import BackendUnavailable
from ..redis_tls import tls_options

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
# KEYS: lock, run counter, session, events; ARGV: task id, lock ttl ms, counter ttl s,
# event json ('' = none), max events, events ttl s.
# -> {acquired (0/1), runs, session json or false, event id or ''}; the event is added only on
# the first start (a restart publishes it after checking the task is not already finished).
_BEGIN = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0, 0, false, ''} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local runs = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local session = redis.call('GET', KEYS[3])
local event_id = ''
if runs == 1 and ARGV[4] ~= '' then
  event_id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'chunk', ARGV[4])
  redis.call('EXPIRE', KEYS[4], ARGV[6])
end
return {1, runs, session, event_id}
"""
# KEYS: lock, session; ARGV: task id, session json ('' = leave it), session ttl s
_END = """
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
# KEYS: event streams (one per event, repeats allowed); ARGV: max events, ttl s, then chunk json
# per key -> event ids, in order
_PUBLISH = """
local ids = {}
for i, key in ipairs(KEYS) do
  ids[i] = redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], '*', 'chunk', ARGV[i + 2])
  redis.call('EXPIRE', key, ARGV[2])
end
return ids
"""
_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass
class RunStart:
    """What :meth:`RedisState.begin_run` found: whether the lock was taken, how many times the task
    was started (1 = first time), the session state, and the ``running`` event's id ('' if not
    published because this is a restart)."""

    acquired: bool
    runs: int = 0
    session: dict[str, Any] | None = None
    event_id: str = ""


class _Batcher:
    """Auto-pipelining for the worker hot path: every call made while a batch is gathering joins
    it; one round trip carries the batch. Events are folded into one ``_PUBLISH`` call per batch,
    placed first so a run's events precede its own end script. Batches go out one at a time, so
    calls are applied in the order they were made. Scripts run by EVALSHA (no SCRIPT EXISTS per
    batch); a NOSCRIPT reply (Redis restarted) loads the script and re-sends just those calls,
    which did not run."""

    def __init__(self, client: Any, publish_script: Any, max_events: int, ttl: int) -> None:
        self.r = client
        self._publish = publish_script
        self.max_events = max_events
        self.ttl = ttl
        self._events: list[tuple[str, str, asyncio.Future[Any]]] = []
        self._calls: list[tuple[Any, Any, asyncio.Future[Any] | None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _kick(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): start afresh
            self._loop, self._events, self._calls, self._flusher = loop, [], [], None
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return loop

    def event(self, key: str, payload: str) -> asyncio.Future[Any]:
        loop = self._kick()
        fut: asyncio.Future[Any] = loop.create_future()
        self._events.append((key, payload, fut))
        return fut

    def command(self, *args: Any) -> asyncio.Future[Any]:
        loop = self._kick()
        fut: asyncio.Future[Any] = loop.create_future()
        self._calls.append((None, args, fut))
        return fut

    def script(self, script: Any, keys: list[Any], args: list[Any]) -> asyncio.Future[Any]:
        loop = self._kick()
        fut: asyncio.Future[Any] = loop.create_future()
        self._calls.append((script, (len(keys), *keys, *args), fut))
        return fut

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the callers of this tick join
        while self._events or self._calls:
            events, self._events = self._events, []
            calls, self._calls = self._calls, []
            if events:
                keys = [e[0] for e in events]
                args = [self.max_events, self.ttl, *(e[1] for e in events)]
                calls.insert(0, (self._publish, (len(keys), *keys, *args), None))
            try:
                results = await self._send(calls)
            except (*_ERRORS, RedisError) as exc:
                err = BackendUnavailable(f"redis: {exc}") if isinstance(exc, _ERRORS) else exc
                for fut in [e[2] for e in events] + [c[2] for c in calls if c[2] is not None]:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            if events:
                ids = results.pop(0)
                calls.pop(0)
                for i, (_k, _p, fut) in enumerate(events):
                    if fut.done():
                        continue
                    if isinstance(ids, Exception):
                        fut.set_exception(ids)
                    else:
                        fut.set_result(_s(ids[i]))
            for (_script, _args, call_fut), res in zip(calls, results, strict=True):
                if call_fut is None or call_fut.done():
                    continue
                if isinstance(res, Exception):
                    call_fut.set_exception(res)
                else:
                    call_fut.set_result(res)

    async def _send(self, calls: list[tuple[Any, Any, Any]]) -> list[Any]:
        async with self.r.pipeline(transaction=False) as pipe:
            for script, args, _fut in calls:
                if script is None:
                    pipe.execute_command(*args)
                else:
                    pipe.execute_command("EVALSHA", script.sha, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        missing = [i for i, res in enumerate(results) if isinstance(res, NoScriptError)]
        if missing:  # those calls did not run: load their scripts and send them again, in order
            for script in {id(calls[i][0]): calls[i][0] for i in missing}.values():
                script.sha = await self.r.script_load(script.script)
            again = await self._send([calls[i] for i in missing])
            for i, res in zip(missing, again, strict=True):
                results[i] = res
        return results


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
        self._begin = self.r.register_script(_BEGIN)
        self._end = self.r.register_script(_END)
        self._batch = _Batcher(self.r, self.r.register_script(_PUBLISH), max_events, ttl_seconds)

    @classmethod
    def from_url(cls, url: str, ca_cert: str | None = None, **kwargs: Any) -> RedisState:
        return cls(aioredis.Redis.from_url(url, protocol=2, socket_connect_timeout=3, **tls_options(url, ca_cert)),
                   **kwargs)

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
        key = self._k("interrupt", session_id)
        raw = await self._batch.command("GET", key)
        return raw is not None and (raw.decode() if isinstance(raw, bytes) else raw) == task_id

    # -- worker hot path: one script per transition, batched across concurrent runs ---------------
    async def begin_run(self, session_id: str, task_id: str, ttl_seconds: float, event: Chunk | None) -> RunStart:
        """Take the session's run lock (re-entrant for ``task_id``), count the start, read the
        session state and, on a first start, append ``event``: one script, batched."""
        keys = [
            self._k("lock", session_id),
            self._k("runs", task_id),
            self._k("session", session_id),
            self._k("events", session_id),
        ]
        args = [
            task_id,
            int(ttl_seconds * 1000),
            self.ttl,
            event.model_dump_json(exclude={"id"}) if event is not None else "",
            self.max_events,
            self.ttl,
        ]
        res = await self._batch.script(self._begin, keys, args)
        acquired, runs, raw, event_id = res
        return RunStart(
            acquired=bool(int(acquired)),
            runs=int(runs),
            session=json.loads(raw) if raw else None,
            event_id=_s(event_id),
        )

    def publish_nowait(self, session_id: str, chunk: Chunk) -> asyncio.Future[Any]:
        """Queue ``chunk`` for the session's stream; the future gives its event id once the batch
        it joined is written (batches are written in order)."""
        return self._batch.event(self._k("events", session_id), chunk.model_dump_json(exclude={"id"}))

    async def end_run(
        self, session_id: str, task_id: str, event: Chunk | None, state: dict[str, Any] | None, ttl_seconds: int
    ) -> None:
        """Append the final ``event``, save the session ``state`` (if given) and release the lock,
        in one batch (the event first)."""
        futs: list[asyncio.Future[Any]] = []
        if event is not None:
            futs.append(self.publish_nowait(session_id, event))
        keys = [self._k("lock", session_id), self._k("session", session_id)]
        args = [task_id, json.dumps(state) if state is not None else "", ttl_seconds]
        futs.append(self._batch.script(self._end, keys, args))
        await asyncio.gather(*futs)

    async def publish(self, session_id: str, chunk: Chunk) -> str:
        event_id: str = await self.publish_nowait(session_id, chunk)
        return event_id

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
