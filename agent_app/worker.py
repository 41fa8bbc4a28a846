"""The queue worker: claim -> run -> record -> ack, plus the callback outbox.

* Lease heartbeat: while a task runs its lease is extended every third of the claim timeout,
  so a long run is never redelivered behind a live worker's back.
* Exactly once from the user's view: the store refuses a second result (``finish`` is
  conditional) and a redelivered task that already finished is acked without re-running.
* Graceful shutdown (SIGTERM): stop claiming, let in-flight runs finish for ``grace_seconds``,
  then cancel them and hand the tasks back without counting an attempt.
* Claiming: one fetch loop claims up to the free slots in one round trip (``XREADGROUP COUNT n``
  on Redis) and runs each delivery as its own asyncio task, at most ``concurrency`` at once.
* Busy flag: :attr:`Worker.busy`; on ECS the worker also toggles task scale-in protection
  through the agent endpoint (``$ECS_AGENT_URI/task-protection/v1/state``) while it has work
  (:class:`TaskProtection`: on at once when a task starts, off after a short idle grace).
* Health: ``--health-port`` serves ``/healthz`` (liveness) and ``/readyz`` (queue reachable),
  both reporting ``busy`` (:class:`HealthServer`, stdlib asyncio, no framework).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from .callbacks import CallbackSender
from .core.models import Delivery
from .core.ports import BackendUnavailable
from .metrics import RUN_SECONDS, RUNS, WORKER_BUSY
from .settings import HEALTH_LIVENESS_PATH, HEALTH_READINESS_PATH
from .wiring import Container

log = logging.getLogger("agent_app.worker")


class TaskProtection:
    """ECS task scale-in protection through the ECS agent endpoint, driven by the busy flag.

    ``PUT $ECS_AGENT_URI/task-protection/v1/state`` with ``{"ProtectionEnabled": true,
    "ExpiresInMinutes": N}`` as soon as the worker gets work, refreshed before it expires while
    the worker stays busy, and ``{"ProtectionEnabled": false}`` once it has been idle for
    ``idle_grace_seconds`` (so a stream of short tasks does not flap it per task). Runs in the
    background: claiming never waits on the agent endpoint. A no-op when ``ECS_AGENT_URI`` is unset.
    """

    def __init__(
        self,
        agent_uri: str | None,
        *,
        expires_minutes: int = 60,
        idle_grace_seconds: float = 2.0,
        retry_seconds: float = 5.0,
    ) -> None:
        self.agent_uri = agent_uri.rstrip("/") if agent_uri else None
        self.expires_minutes = expires_minutes
        self.idle_grace_seconds = idle_grace_seconds
        self.retry_seconds = retry_seconds
        self.enabled = False
        self._busy = False
        self._enabled_at = 0.0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.agent_uri is not None

    def update(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self._changed.set()

    def start(self) -> None:
        if self.active and self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.enabled:
            await self._put(False)

    async def _wait_change(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def _loop(self) -> None:
        refresh_after = max(30.0, self.expires_minutes * 60 - 120)
        while True:
            self._changed.clear()
            busy = self._busy
            if busy and (not self.enabled or time.monotonic() - self._enabled_at > refresh_after):
                if not await self._put(True):
                    await self._wait_change(self.retry_seconds)
                continue
            if not busy and self.enabled:
                if await self._wait_change(self.idle_grace_seconds):
                    continue  # busy again within the grace: stay protected
                if not await self._put(False):
                    await self._wait_change(self.retry_seconds)
                continue
            await self._wait_change(min(refresh_after, 60.0))

    async def _put(self, enabled: bool) -> bool:
        body: dict[str, Any] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self.expires_minutes
        try:
            async with httpx.AsyncClient(timeout=3.0) as client:
                res = await client.put(f"{self.agent_uri}/task-protection/v1/state", json=body)
            failure = None
            if res.status_code >= 300:
                failure = f"HTTP {res.status_code}: {res.text[:200]}"
            elif "failure" in (res.text or ""):
                with contextlib.suppress(ValueError):
                    failure = str(res.json().get("failure") or "") or None
        except httpx.HTTPError as exc:
            failure = str(exc) or type(exc).__name__
        if failure:
            log.warning("ECS task protection %s failed: %s", "enable" if enabled else "disable", failure)
            return False
        self.enabled = enabled
        self._enabled_at = time.monotonic()
        log.info("ECS task scale-in protection %s", "enabled" if enabled else "disabled")
        return True


class Worker:
    def __init__(
        self,
        container: Container,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
        grace_seconds: float = 20.0,
        callbacks: bool = True,
        protection: TaskProtection | None = None,
        on_load: Callable[[Worker], None] | None = None,
    ) -> None:
        self.c = container
        self.on_load = on_load
        """Called whenever the in-flight count changes or the worker starts (the supervisor's
        shared-memory report when this worker is one of ``--processes N``)."""
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency or container.settings.worker_concurrency
        self.grace_seconds = grace_seconds
        self.claim_timeout = container.settings.queue_claim_timeout_seconds
        self.with_callbacks = callbacks
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._leased: dict[str, Delivery] = {}
        self._fetcher: asyncio.Task[None] | None = None
        self.started = False
        self.protection = protection or TaskProtection(os.environ.get("ECS_AGENT_URI"))
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

    @property
    def alive(self) -> bool:
        """Liveness: the fetch loop is running (or the worker is draining on purpose)."""
        if self._stopping.is_set():
            return True
        return self._fetcher is not None and not self._fetcher.done()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()
        self._slot_free.set()

    def _report(self) -> None:
        if self.on_load is not None:
            with contextlib.suppress(Exception):
                self.on_load(self)

    async def ping(self) -> None:
        """Readiness: the queue backend answers."""
        await self.c.queue.ping()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        log.info("worker %s started (concurrency %d)", self.worker_id, self.concurrency)
        self.protection.start()
        self._fetcher = asyncio.create_task(self._fetch())
        loops: list[asyncio.Task[None]] = [asyncio.create_task(self._leases())]
        if self.with_callbacks:
            loops.append(asyncio.create_task(self._callbacks()))
        self.started = True
        self._report()
        await self._stopping.wait()
        log.info("worker %s stopping: %d task(s) in flight", self.worker_id, len(self._inflight))
        # the fetch loop notices the stop within one claim block (<= 1 s) and hands back what it got
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._fetcher), 5.0)
        self._fetcher.cancel()
        if self._inflight:
            _done, pending = await asyncio.wait(list(self._inflight.values()), timeout=self.grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(self._fetcher, *loops, return_exceptions=True)
        await self.sender.close()
        await self.protection.close()

    async def _claim(self, n: int) -> list[Delivery]:
        many = getattr(self.c.queue, "claim_many", None)
        if many is not None:
            got: list[Delivery] = await many(self.worker_id, n, self.claim_timeout, block_seconds=1.0)
            return got
        one = await self.c.queue.claim(self.worker_id, self.claim_timeout, block_seconds=1.0)
        return [one] if one is not None else []

    async def _fetch(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self._inflight)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                deliveries = await self._claim(free)
            except BackendUnavailable as exc:
                log.warning("queue unavailable: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)
                continue
            if self._stopping.is_set():
                for delivery in deliveries:
                    with contextlib.suppress(Exception):
                        await self.c.queue.release(delivery, count_attempt=False)
                return
            for delivery in deliveries:
                self._start(delivery)

    def _start(self, delivery: Delivery) -> None:
        key = delivery.receipt
        run = asyncio.create_task(self._handle(delivery))
        self._inflight[key] = run
        self._leased[key] = delivery
        WORKER_BUSY.set(len(self._inflight))
        self.protection.update(True)
        self._report()

        def done(_: asyncio.Task[None]) -> None:
            self._inflight.pop(key, None)
            self._leased.pop(key, None)
            WORKER_BUSY.set(len(self._inflight))
            self._slot_free.set()
            if not self._inflight:
                self.protection.update(False)
            self._report()

        run.add_done_callback(done)

    async def _handle(self, delivery: Delivery) -> None:
        started = time.monotonic()
        try:
            outcome = await self.c.service.execute(delivery.task, self.worker_id)
        except asyncio.CancelledError:
            self._leased.pop(delivery.receipt, None)
            log.info("task %s interrupted by shutdown; handing it back", delivery.task.id)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.c.queue.release(delivery, count_attempt=False))
            raise
        except Exception:
            self._leased.pop(delivery.receipt, None)
            log.exception("task %s failed (attempt %d)", delivery.task.id, delivery.attempt)
            with contextlib.suppress(Exception):
                await self.c.queue.release(delivery, delay_seconds=min(30.0, 2.0**delivery.attempt))
            return
        self._leased.pop(delivery.receipt, None)
        try:
            if outcome.status == "busy":
                await self.c.queue.release(delivery, delay_seconds=0.2, count_attempt=False)
                return
            await self.c.queue.ack(delivery)
        except BackendUnavailable as exc:  # the lease lapses and the task is redelivered (a duplicate)
            log.warning("ack/release of %s failed: %s", delivery.task.id, exc)
            return
        self.processed += 1
        if outcome.status == "done" and outcome.task is not None:
            RUNS.labels(outcome.task.status.value).inc()
            RUN_SECONDS.observe(time.monotonic() - started)
            if outcome.task.callback_url:  # start its delivery now, not at the next outbox poll
                with contextlib.suppress(Exception):
                    await self.sender.deliver_due(wait=False)

    async def _leases(self) -> None:
        """Lease heartbeat for every running task: each third of the claim timeout, one call
        (``extend_many`` where the queue has it) resets the leases of all deliveries still running,
        so a long run is never redelivered while this worker lives. A claim itself starts a lease,
        so a task claimed just before a tick is at most one interval old when extended."""
        interval = max(0.2, self.claim_timeout / 3)
        many = getattr(self.c.queue, "extend_many", None)
        while True:
            await asyncio.sleep(interval)
            leased = list(self._leased.values())
            if not leased:
                continue
            try:
                if many is not None:
                    await many(leased, self.claim_timeout)
                else:
                    for delivery in leased:
                        await self.c.queue.extend(delivery, self.claim_timeout)
            except BackendUnavailable as exc:
                log.warning("lease extension failed for %d task(s): %s", len(leased), exc)
            except Exception as exc:
                log.warning("lease extension: %s", exc)

    async def _callbacks(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sender.deliver_due(wait=False)  # attempts run concurrently, per-receiver limited
            except Exception as exc:
                log.warning("callback outbox: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.5)  # retries come due between polls: keep them on time

    def status(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "busy": self.busy,
            "inflight": len(self._inflight),
            "concurrency": self.concurrency,
            "processed": self.processed,
            "stopping": self.stopping,
            "scale_in_protected": self.protection.enabled,
        }


class HealthServer:
    """A tiny HTTP/1.1 server (stdlib asyncio) for the worker's probes (a :class:`Worker`, or the
    :class:`~agent_app.supervisor.Supervisor` of ``--processes N``: anything with ``status()``,
    ``alive``, ``started``, ``stopping`` and ``async ping()``).

    ``GET /healthz``: 200 while the worker's fetch loop runs (liveness), with ``busy``.
    ``GET /readyz``: 200 when the queue backend answers a ping and the worker is not draining,
    else 503; the body carries ``busy`` and ``inflight`` so the platform can see the worker's load.
    """

    def __init__(self, worker: Any, host: str = "0.0.0.0", port: int = 8001) -> None:
        self.worker = worker
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        log.info("worker health on http://%s:%d/healthz and /readyz", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5.0)
            while True:  # drain headers
                line = await asyncio.wait_for(reader.readline(), 5.0)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("", "")
            code, body = await self._route(method, path)
            payload = json.dumps(body).encode()
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[code]
            head = (
                f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (payload if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _route(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        if method not in ("GET", "HEAD"):
            return 405, {"error": "method not allowed"}
        status = self.worker.status()
        if path == HEALTH_LIVENESS_PATH:
            alive = self.worker.alive
            return (200 if alive else 503), {"status": "ok" if alive else "fetch loop stopped", **status}
        if path == HEALTH_READINESS_PATH:
            try:
                await asyncio.wait_for(self.worker.ping(), 1.5)  # a stalled queue shows within 2 s
                queue = "ok"
            except (BackendUnavailable, TimeoutError) as exc:
                queue = f"unavailable: {exc}"
            except Exception as exc:
                queue = f"unavailable: {type(exc).__name__}: {exc}"
            ready = queue == "ok" and self.worker.started and not self.worker.stopping
            return (200 if ready else 503), {"status": "ready" if ready else "not ready", "queue": queue, **status}
        return 404, {"error": "not found"}


async def run_worker(
    container: Container,
    *,
    install_signals: bool = True,
    health_port: int | None = None,
    health_host: str = "0.0.0.0",
    concurrency: int | None = None,
    worker_id: str | None = None,
    protection: TaskProtection | None = None,
    on_load: Callable[[Worker], None] | None = None,
    stop_when: Callable[[], bool] | None = None,
) -> None:
    """Start the container, optionally the health server, and run a worker until SIGTERM
    (or until ``stop_when()`` turns true, checked every half second: a supervised child whose
    supervisor is gone)."""
    await container.start()
    worker = Worker(container, concurrency=concurrency, worker_id=worker_id, protection=protection, on_load=on_load)
    health = HealthServer(worker, health_host, health_port) if health_port is not None else None
    if install_signals:
        worker.install_signal_handlers()
    watch: asyncio.Task[None] | None = None
    if stop_when is not None:

        async def watcher() -> None:
            while not worker.stopping:
                if stop_when():
                    log.warning("worker %s: supervisor gone; stopping", worker.worker_id)
                    worker.stop()
                    return
                await asyncio.sleep(0.5)

        watch = asyncio.create_task(watcher())
    try:
        if health is not None:
            await health.start()
        await worker.run()
    finally:
        if watch is not None:
            watch.cancel()
        if health is not None:
            await health.close()
        await container.close()
