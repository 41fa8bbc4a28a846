"""The queue worker: claim -> run -> record -> ack, plus the callback outbox.

* Lease heartbeat: while a task runs its lease is extended every third of the claim timeout,
  so a long run is never redelivered behind a live worker's back.
* Exactly once from the user's view: the store refuses a second result (``finish`` is
  conditional) and a redelivered task that already finished is acked without re-running.
* Graceful shutdown (SIGTERM): stop claiming, let in-flight runs finish for ``grace_seconds``,
  then cancel them and hand the tasks back without counting an attempt.
* Busy flag: :attr:`Worker.busy`; on ECS the worker also toggles task scale-in protection
  through the agent endpoint (``$ECS_AGENT_URI/task-protection/v1/state``) while it has work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid

import httpx

from agent_app.callbacks import CallbackSender
from agent_app.core.models import Delivery
from agent_app.core.ports import BackendUnavailable
from agent_app.metrics import RUN_SECONDS, RUNS, WORKER_BUSY
from agent_app.wiring import Container

log = logging.getLogger("agent_app.worker")


class Worker:
    def __init__(
        self,
        container: Container,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
        grace_seconds: float = 20.0,
        callbacks: bool = True,
    ) -> None:
        self.c = container
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency or container.settings.worker_concurrency
        self.grace_seconds = grace_seconds
        self.claim_timeout = container.settings.queue_claim_timeout_seconds
        self.with_callbacks = callbacks
        self._stopping = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._protected = False
        secrets = (container.settings.secret("callback_signing_secret") or "").split()
        self.sender = CallbackSender(
            container.store,
            secrets,
            container.callback_policy(),
            max_age_seconds=container.settings.callback_max_age_seconds,
        )
        self.processed = 0

    @property
    def busy(self) -> bool:
        """True while a task is running: protect this worker from scale-in."""
        return bool(self._inflight)

    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        log.info("worker %s started (concurrency %d)", self.worker_id, self.concurrency)
        loops = [asyncio.create_task(self._consume(i)) for i in range(self.concurrency)]
        if self.with_callbacks:
            loops.append(asyncio.create_task(self._callbacks()))
        await self._stopping.wait()
        log.info("worker %s stopping: %d task(s) in flight", self.worker_id, len(self._inflight))
        if self._inflight:
            _done, pending = await asyncio.wait(list(self._inflight.values()), timeout=self.grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self._protect(False)

    async def _consume(self, slot: int) -> None:
        consumer = f"{self.worker_id}-{slot}"
        while not self._stopping.is_set():
            try:
                delivery = await self.c.queue.claim(consumer, self.claim_timeout, block_seconds=1.0)
            except BackendUnavailable as exc:
                log.warning("queue unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if delivery is None:
                continue
            if self._stopping.is_set():
                await self.c.queue.release(delivery, count_attempt=False)
                return
            run = asyncio.create_task(self._handle(delivery, consumer))
            self._inflight[delivery.task.id] = run
            WORKER_BUSY.set(len(self._inflight))
            await self._protect(True)
            try:
                await asyncio.shield(run)
            except asyncio.CancelledError:
                if not run.done():
                    run.cancel()
                    with contextlib.suppress(BaseException):
                        await run
                if self._stopping.is_set():
                    return
                raise
            finally:
                self._inflight.pop(delivery.task.id, None)
                WORKER_BUSY.set(len(self._inflight))
                if not self._inflight:
                    await self._protect(False)

    async def _handle(self, delivery: Delivery, consumer: str) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(delivery))
        started = time.monotonic()
        try:
            outcome = await self.c.service.execute(delivery.task, consumer)
        except asyncio.CancelledError:
            heartbeat.cancel()
            log.info("task %s interrupted by shutdown; handing it back", delivery.task.id)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.c.queue.release(delivery, count_attempt=False))
            raise
        except Exception:
            heartbeat.cancel()
            log.exception("task %s failed (attempt %d)", delivery.task.id, delivery.attempt)
            with contextlib.suppress(Exception):
                await self.c.queue.release(delivery, delay_seconds=min(30.0, 2.0**delivery.attempt))
            return
        heartbeat.cancel()
        if outcome.status == "busy":
            await self.c.queue.release(delivery, delay_seconds=0.2, count_attempt=False)
            return
        await self.c.queue.ack(delivery)
        self.processed += 1
        if outcome.status == "done" and outcome.task is not None:
            RUNS.labels(outcome.task.status.value).inc()
            RUN_SECONDS.observe(time.monotonic() - started)
            if outcome.task.callback_url:
                with contextlib.suppress(Exception):
                    await self.sender.deliver_due()

    async def _heartbeat(self, delivery: Delivery) -> None:
        interval = max(0.2, self.claim_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.c.queue.extend(delivery, self.claim_timeout)
            except BackendUnavailable as exc:
                log.warning("lease extension failed for %s: %s", delivery.task.id, exc)

    async def _callbacks(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sender.deliver_due()
            except Exception as exc:
                log.warning("callback outbox: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)

    async def _protect(self, enabled: bool) -> None:
        """ECS task scale-in protection while busy (no-op elsewhere)."""
        agent = os.environ.get("ECS_AGENT_URI")
        if not agent or self._protected == enabled:
            return
        self._protected = enabled
        body = {"ProtectionEnabled": enabled, "ExpiresInMinutes": 60} if enabled else {"ProtectionEnabled": False}
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                await client.put(f"{agent}/task-protection/v1/state", json=body)
        except httpx.HTTPError as exc:
            log.warning("ECS task protection update failed: %s", exc)


async def run_worker(container: Container, *, install_signals: bool = True) -> None:
    await container.start()
    worker = Worker(container)
    if install_signals:
        worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        await container.close()
