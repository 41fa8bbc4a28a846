"""Agent Protocol threads and run records, kept in the session state store.

A thread *is* a session: its id is the session id the runs use, so its conversation history is
the session's state. What the protocol adds - who owns the thread, its metadata, which runs were
started on it, each run's options - is kept next to the sessions in the same
:class:`~agent_app.core.ports.StateStore` (memory, Redis or DynamoDB), under keys a session id
cannot take (they contain ``/``), with the same expiry as session state. Read-modify-writes (a new
run on a thread, a new thread in its owner's list) hold the store's per-key lock, so concurrent API
instances do not lose each other's updates.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from .ports import BackendUnavailable, StateStore

MAX_THREADS_LISTED = 10_000
"""Per owner, newest kept: the search index is one record, so it is bounded."""
MAX_RUNS_KEPT = 1_000
"""Per thread, newest kept (history and run lists read these)."""


class ThreadExists(RuntimeError):
    """``POST /threads`` with an existing id and ``if_exists=raise`` (HTTP 409)."""


@dataclass
class ThreadRegistry:
    state: StateStore
    ttl_seconds: int
    lock_seconds: float = 10.0

    # -- threads ---------------------------------------------------------------------------------
    async def create(
        self, owner: str, thread_id: str | None, metadata: dict[str, Any], if_exists: str = "raise"
    ) -> dict[str, Any]:
        thread_id = thread_id or str(uuid.uuid4())
        async with self._locked(_thread_key(thread_id)):
            current = await self.state.get_session(_thread_key(thread_id))
            if current is not None:
                if current.get("owner") != owner or if_exists == "raise":
                    # another owner's thread is reported the same way: ids are not an oracle
                    raise ThreadExists(f"Thread {thread_id} already exists.")
                return current
            now = time.time()
            record = {
                "thread_id": thread_id,
                "owner": owner,
                "metadata": metadata,
                "created_at": now,
                "updated_at": now,
                "runs": [],
            }
            await self.state.put_session(_thread_key(thread_id), record, self.ttl_seconds)
        async with self._locked(_index_key(owner)):
            index = await self.state.get_session(_index_key(owner)) or {"ids": []}
            ids = [i for i in index["ids"] if i != thread_id] + [thread_id]
            await self.state.put_session(_index_key(owner), {"ids": ids[-MAX_THREADS_LISTED:]}, self.ttl_seconds)
        return record

    async def get(self, owner: str, thread_id: str) -> dict[str, Any] | None:
        record = await self.state.get_session(_thread_key(thread_id))
        if record is None or record.get("owner") != owner:
            return None
        return record

    async def list(self, owner: str, batch: int = 50) -> AsyncIterator[dict[str, Any]]:
        """The owner's threads, newest first, read ``batch`` at a time (a search stops early)."""
        index = await self.state.get_session(_index_key(owner)) or {"ids": []}
        ids = list(reversed(index["ids"]))
        for start in range(0, len(ids), batch):
            found = await asyncio.gather(*(self.get(owner, i) for i in ids[start : start + batch]))
            for record in found:
                if record is not None:
                    yield record

    async def add_run(self, owner: str, thread_id: str, run_id: str) -> None:
        async with self._locked(_thread_key(thread_id)):
            record = await self.get(owner, thread_id)
            if record is None:
                return
            record["runs"] = ([*record["runs"], run_id])[-MAX_RUNS_KEPT:]
            record["updated_at"] = time.time()
            await self.state.put_session(_thread_key(thread_id), record, self.ttl_seconds)

    # -- runs ------------------------------------------------------------------------------------
    async def put_run(self, run_id: str, record: dict[str, Any]) -> None:
        """What the protocol knows of a run beyond the task: owner, options, its kwargs."""
        await self.state.put_session(_run_key(run_id), record, self.ttl_seconds)

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        return await self.state.get_session(_run_key(run_id))

    @asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        token = uuid.uuid4().hex
        lock = f"{key}/lock"
        deadline = time.monotonic() + self.lock_seconds
        while not await self.state.acquire_run(lock, token, self.lock_seconds):
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"could not lock {key} within {self.lock_seconds:g}s")
            await asyncio.sleep(0.01)
        try:
            yield
        finally:
            await self.state.release_run(lock, token)


def _thread_key(thread_id: str) -> str:
    return f"ap/thread/{thread_id}"


def _index_key(owner: str) -> str:
    return f"ap/threads/{owner}"


def _run_key(run_id: str) -> str:
    return f"ap/run/{run_id}"
