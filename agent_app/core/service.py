"""The agent service: the one place transports call. It composes the ports and the session.

* :meth:`AgentService.submit` - webhook/WS path: idempotent, durable accept (one queue call).
* :meth:`AgentService.run_stream` - synchronous path: run now, stream chunks.
* :meth:`AgentService.execute` - worker path: run a claimed task exactly once from the user's view.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .bounds import memory_text
from .models import (
    DEFAULT_PRINCIPAL,
    Chunk,
    RunInput,
    RunStatus,
    SubmitOutcome,
    Task,
    new_session_id,
    request_fingerprint,
    scoped,
)
from .netguard import NetPolicy
from .ports import LLM, StateStore, TaskQueue, TaskStore, VectorMemory
from .session import AgentSession, final_status
from .tools import ToolContext, ToolRegistry

SessionPolicy = Literal["enqueue", "reject", "interrupt"]


class SessionBusy(RuntimeError):
    """A run is active on the session and the policy is ``reject`` (HTTP 409)."""


class IdempotencyConflict(RuntimeError):
    """Same idempotency key, different body (HTTP 422)."""


@dataclass
class ExecuteOutcome:
    status: Literal["done", "duplicate", "busy"]
    task: Task | None = None


@dataclass
class AgentService:
    queue: TaskQueue
    state: StateStore
    store: TaskStore
    llm: LLM
    tools: ToolRegistry
    memory: VectorMemory | None = None
    max_steps: int = 8
    run_timeout_seconds: float = 300.0
    state_ttl_seconds: int = 86_400
    session_policy: SessionPolicy = "enqueue"
    fetch_policy: NetPolicy = field(default_factory=NetPolicy)
    callback_delay_seconds: float = 0.0
    max_tool_output_bytes: int = 8_192
    max_prompt_bytes: int = 65_536
    max_result_bytes: int = 16_384
    on_finished: list[Callable[[Task], None]] = field(default_factory=list)

    def session(self) -> AgentSession:
        return AgentSession(
            self.llm,
            self.tools,
            max_steps=self.max_steps,
            timeout_seconds=self.run_timeout_seconds,
            max_tool_output_bytes=self.max_tool_output_bytes,
            max_prompt_bytes=self.max_prompt_bytes,
            max_result_bytes=self.max_result_bytes,
        )

    def _context(self, task: Task) -> ToolContext:
        return ToolContext(
            session_id=task.session_key,
            task_id=task.id,
            memory=self.memory,
            net_policy=self.fetch_policy,
            principal=task.principal,
        )

    async def _remember(self, task: Task, result: str, steps: list[dict[str, Any]]) -> None:
        if self.memory is not None:
            await self.memory.add(
                task.id,
                memory_text(task.message, result, steps),
                {"session_id": task.session_id, "principal": task.principal},
            )

    # -- accept ----------------------------------------------------------------------------------
    async def submit(
        self,
        run: RunInput,
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        policy: SessionPolicy | None = None,
        principal: str = DEFAULT_PRINCIPAL,
    ) -> SubmitOutcome:
        """Record and enqueue a task durably, honouring the idempotency key and the session policy.
        Sessions and idempotency keys are the principal's own: another principal's same names
        are different ones."""
        session_id = run.session_id or new_session_id()
        fingerprint = request_fingerprint(
            {
                "message": run.message,
                "session_id": run.session_id,
                "metadata": run.metadata,
                "cb": callback_url,
            }
        )
        policy = policy or self.session_policy
        session_key = scoped(principal, session_id)
        if policy != "enqueue" and run.session_id and await self.state.active_run(session_key):
            if policy == "reject":
                raise SessionBusy(f"session {session_id} has an active run")
            await self.state.request_interrupt(session_key)
        task = Task(
            session_id=session_id,
            principal=principal,
            message=run.message,
            metadata=run.metadata,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
        )
        store_key = scoped(principal, idempotency_key) if idempotency_key else None
        outcome = await self.queue.submit(task, store_key, max(self.state_ttl_seconds, 86_400))
        if outcome.conflict:
            raise IdempotencyConflict(f"Idempotency-Key {idempotency_key!r} was used with a different body")
        return outcome

    async def get_task(self, task_id: str, principal: str | None = None) -> Task | None:
        """The task, or None if unknown or (with ``principal``) someone else's."""
        task = await self._get_task(task_id)
        if task is not None and principal is not None and task.principal != principal:
            return None
        return task

    async def _get_task(self, task_id: str) -> Task | None:
        stored = await self.store.get(task_id)
        if stored is not None:
            return stored
        queued = await self.queue.get(task_id)
        # the worker fast path keeps ``running`` in the session's run lock, not in the store
        if (
            queued is not None
            and not queued.status.terminal
            and self._fast_path()
            and await self.state.active_run(queued.session_key) == queued.id
        ):
            return queued.model_copy(update={"status": RunStatus.running})
        return queued

    # -- run -------------------------------------------------------------------------------------
    async def run_stream(
        self, run: RunInput, *, policy: SessionPolicy | None = None, principal: str = DEFAULT_PRINCIPAL
    ) -> AsyncIterator[Chunk]:
        """Synchronous run in this process; chunks are also published to the session's stream."""
        task = Task(
            session_id=run.session_id or new_session_id(), principal=principal, message=run.message,
            metadata=run.metadata,
        )
        session_id = task.session_key
        policy = policy or self.session_policy
        if not await self.state.acquire_run(session_id, task.id, self.run_timeout_seconds + 60):
            if policy == "reject":
                raise SessionBusy(f"session {task.session_id} has an active run")
            if policy == "interrupt":
                await self.state.request_interrupt(session_id)
            deadline = time.monotonic() + self.run_timeout_seconds
            while not await self.state.acquire_run(session_id, task.id, self.run_timeout_seconds + 60):
                if time.monotonic() > deadline:
                    yield Chunk(type="error", content={"code": "timeout", "message": "session stayed busy"})
                    return
                await asyncio.sleep(0.05)
        try:
            await self.store.start(task, "api")
            async for chunk in self._run(task):
                yield chunk
        finally:
            await self.state.release_run(session_id, task.id)

    def _fast_path(self) -> bool:
        """State and store offer the worker fast path (Redis state + SQL store): the run's start is
        one state call, its events are batched, its row is written once with the result."""
        return hasattr(self.state, "begin_run") and hasattr(self.store, "record_result")

    async def execute(self, task: Task, worker_id: str) -> ExecuteOutcome:
        """Run a claimed task. Already terminal -> ``duplicate`` (ack, don't re-run); session busy
        with another task -> ``busy`` (hand back later without counting an attempt)."""
        if self._fast_path():
            return await self._execute_fast(task, worker_id)
        if not await self.state.acquire_run(task.session_key, task.id, self.run_timeout_seconds + 60):
            current = await self.store.get(task.id)  # a redelivery of a finished task: ack it
            if current is not None and current.status.terminal:
                return ExecuteOutcome("duplicate", current)
            return ExecuteOutcome("busy")
        try:
            # ``start`` returns the stored row when the task is already terminal (one round trip)
            started = await self.store.start(task, worker_id)
            if started is not None and started.status.terminal:
                return ExecuteOutcome("duplicate", started)
            finished: list[Task] = []
            async for _chunk in self._run(task, finished):
                pass
            done = finished[0] if finished else await self.store.get(task.id)
            return ExecuteOutcome("done", done)
        finally:
            await self.state.release_run(task.session_key, task.id)

    async def _execute_fast(self, task: Task, worker_id: str) -> ExecuteOutcome:
        """:meth:`execute` on a state with ``begin_run``/``end_run``/``publish_nowait`` and a store
        with ``record_result``: start = one state call (lock, run count, session, ``running``
        event); the status shows ``running`` through the lock (:meth:`get_task`); events are
        written in batches; the store is written once, with the result, conditionally (exactly
        once); end = one state call (final event, session, unlock). A task started before (a
        redelivery) is first checked in the store, so a finished one is acked, not re-run."""
        state: Any = self.state
        store: Any = self.store
        running = Chunk(type="status", content="running", task_id=task.id)
        start = await state.begin_run(task.session_key, task.id, self.run_timeout_seconds + 60, running)
        if not start.acquired:
            current = await self.store.get(task.id)  # a redelivery of a finished task: ack it
            if current is not None and current.status.terminal:
                return ExecuteOutcome("duplicate", current)
            return ExecuteOutcome("busy")
        ended = False
        try:
            if start.runs > 1:  # started before: it may have finished with only its ack lost
                current = await self.store.get(task.id)
                if current is not None and current.status.terminal:
                    return ExecuteOutcome("duplicate", current)
                await state.publish(task.session_key, running)
            history: list[dict[str, Any]] = list((start.session or {}).get("history", []))
            ctx = self._context(task)

            async def should_stop() -> bool:
                return await self.state.interrupted(task.session_key, task.id)

            steps: list[dict[str, Any]] = []
            published: list[asyncio.Future[Any]] = []
            last: Chunk | None = None
            async for chunk in self.session().run(task.message, ctx, history, should_stop):
                chunk.task_id = task.id
                published.append(state.publish_nowait(task.session_key, chunk))
                steps.append({"type": chunk.type, "content": chunk.content})
                last = chunk
            await asyncio.gather(*published)  # every event is out before the result is recorded
            status, result, error = _outcome(last)
            callback = None
            if task.callback_url:
                callback = (task.callback_url, self._callback_payload(task, status, result, error))
            first = await store.record_result(
                task, status, result, error, steps, worker_id=worker_id, runs=start.runs, callback=callback
            )
            new_state = None
            if first:
                history += [{"role": "user", "content": task.message}]
                if result is not None:
                    history.append({"role": "assistant", "content": result})
                    await self._remember(task, result, steps)
                new_state = {"history": history[-40:]}
            ended = True
            final = Chunk(type="status", content=status.value, task_id=task.id)
            await state.end_run(task.session_key, task.id, final, new_state, self.state_ttl_seconds)
            if not first:
                return ExecuteOutcome("done", await self.store.get(task.id))
            done = task.model_copy(
                update={"status": status, "result": result, "error": error, "steps": steps, "updated_at": time.time()}
            )
            for hook in self.on_finished:
                hook(done)
            return ExecuteOutcome("done", done)
        finally:
            if not ended:
                await self.state.release_run(task.session_key, task.id)

    def _callback_payload(
        self, task: Task, status: RunStatus, result: str | None, error: str | None
    ) -> dict[str, Any]:
        return {
            "type": "run.completed",
            "timestamp": time.time(),
            "data": {
                "task_id": task.id,
                "session_id": task.session_id,
                "status": status.value,
                "result": result,
                "error": error,
                "metadata": task.metadata,
            },
        }

    async def _run(self, task: Task, finished: list[Task] | None = None) -> AsyncIterator[Chunk]:
        state = await self.state.get_session(task.session_key) or {}
        history: list[dict[str, Any]] = list(state.get("history", []))
        ctx = self._context(task)

        async def should_stop() -> bool:
            return await self.state.interrupted(task.session_key, task.id)

        await self.state.publish(task.session_key, Chunk(type="status", content="running", task_id=task.id))
        steps: list[dict[str, Any]] = []
        last: Chunk | None = None
        async for chunk in self.session().run(task.message, ctx, history, should_stop):
            chunk = chunk.model_copy(update={"task_id": task.id})
            chunk.id = await self.state.publish(task.session_key, chunk)
            steps.append({"type": chunk.type, "content": chunk.content})
            last = chunk
            yield chunk
        status, result, error = _outcome(last)
        first = await self.store.finish(task.id, status, result, error, steps)
        await self.state.publish(task.session_key, Chunk(type="status", content=status.value, task_id=task.id))
        if not first:
            return
        history += [{"role": "user", "content": task.message}]
        if result is not None:
            history.append({"role": "assistant", "content": result})
            await self._remember(task, result, steps)
        await self.state.put_session(task.session_key, {"history": history[-40:]}, self.state_ttl_seconds)
        if task.callback_url:
            payload = self._callback_payload(task, status, result, error)
            await self.store.schedule_callback(task.id, task.callback_url, payload, time.time())
        done = task.model_copy(
            update={"status": status, "result": result, "error": error, "steps": steps, "updated_at": time.time()}
        )
        if finished is not None:
            finished.append(done)
        for hook in self.on_finished:
            hook(done)


def _outcome(last: Chunk | None) -> tuple[RunStatus, str | None, str | None]:
    """(status, result, error) of a run from its last chunk."""
    status = final_status(last)
    result = last.content if last is not None and last.type == "result" else None
    error = None
    if status != RunStatus.success and last is not None:
        error = last.content.get("message") if isinstance(last.content, dict) else str(last.content)
    return status, result, error
