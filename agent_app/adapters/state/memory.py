"""In-process session state, run locks and event streams (embedded default)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from ...core.models import Chunk

_MAX_EVENTS = 1_000


class MemoryState:
    def __init__(self, heartbeat_seconds: float = 15.0) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self._sessions: dict[str, tuple[dict[str, Any], float]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._interrupts: dict[str, float] = {}
        self._run_started: dict[str, float] = {}
        self._events: dict[str, list[Chunk]] = {}
        self._seq = 0
        self._changed = asyncio.Condition()

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        item = self._sessions.get(session_id)
        if item is None or item[1] < time.time():
            return None
        return item[0]

    async def put_session(self, session_id: str, state: dict[str, Any], ttl_seconds: int) -> None:
        self._sessions[session_id] = (state, time.time() + ttl_seconds)

    async def acquire_run(self, session_id: str, task_id: str, ttl_seconds: float) -> bool:
        held = self._locks.get(session_id)
        if held and held[0] != task_id and held[1] > time.time():
            return False
        self._locks[session_id] = (task_id, time.time() + ttl_seconds)
        self._run_started.setdefault(task_id, time.time())
        return True

    async def release_run(self, session_id: str, task_id: str) -> None:
        held = self._locks.get(session_id)
        if held and held[0] == task_id:
            del self._locks[session_id]
        self._run_started.pop(task_id, None)

    async def active_run(self, session_id: str) -> str | None:
        held = self._locks.get(session_id)
        return held[0] if held and held[1] > time.time() else None

    async def request_interrupt(self, session_id: str) -> None:
        self._interrupts[session_id] = time.time()

    async def interrupted(self, session_id: str, task_id: str) -> bool:
        at = self._interrupts.get(session_id)
        started = self._run_started.get(task_id)
        return at is not None and started is not None and at >= started

    async def publish(self, session_id: str, chunk: Chunk) -> str:
        self._seq += 1
        event_id = f"{int(time.time() * 1000)}-{self._seq}"
        events = self._events.setdefault(session_id, [])
        events.append(chunk.model_copy(update={"id": event_id}))
        del events[:-_MAX_EVENTS]
        async with self._changed:
            self._changed.notify_all()
        return event_id

    async def cursor(self, session_id: str) -> str:
        events = self._events.get(session_id)
        return events[-1].id or "0-0" if events else "0-0"

    async def subscribe(self, session_id: str, after_id: str | None = None) -> AsyncIterator[Chunk]:
        last = self._seq if after_id == "$" else _seq_of(after_id)
        while True:
            fresh = [c for c in self._events.get(session_id, []) if _seq_of(c.id) > last]
            for chunk in fresh:
                last = _seq_of(chunk.id)
                yield chunk
            if fresh:
                continue
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), self.heartbeat_seconds)
                except TimeoutError:
                    yield Chunk(type="heartbeat", content=None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _seq_of(event_id: str | None) -> int:
    if not event_id:
        return 0
    try:
        return int(event_id.rsplit("-", 1)[-1])
    except ValueError:
        return 0
