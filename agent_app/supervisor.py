"""``agent-app worker --processes N``: N worker processes in one consumer group, one supervisor.

The supervisor (the main process) starts N children with ``multiprocessing`` *spawn*, each a
normal :class:`~agent_app.worker.Worker` with its own consumer name (``<host>-<pid>-p<i>``), and:

* restarts a child that dies (backoff 0.5 s doubling to 10 s, reset after 30 s of life); the dead
  child's pending entries are reclaimed by the surviving/new consumers with ``XAUTOCLAIM`` once their
  lease lapses, exactly as for a crashed single worker;
* forwards SIGTERM/SIGINT to the children, which stop claiming, finish or hand back their tasks as a
  single worker does, and exits after them (``grace_seconds + 15`` s, then SIGKILL);
* owns the health endpoint and ECS task scale-in protection: children report ``started``, in-flight
  and processed counts through shared memory (``multiprocessing.Array``); ``/healthz`` is 200 while
  every child is alive, ``/readyz`` when the queue answers and every child has started, and the
  protection is on while any child is busy. Children never call the ECS agent themselves.

A child notices a vanished supervisor (its parent pid changes) and drains itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import time
from typing import Any

from .settings import Settings
from .worker import HealthServer, TaskProtection

log = logging.getLogger("agent_app.supervisor")

# shared-memory slots per child
_STARTED, _INFLIGHT, _PROCESSED = 0, 1, 2
_SLOTS = 3


def _child_main(
    index: int,
    shared: Any,
    overrides: dict[str, Any],
    log_level: str,
    parent_pid: int,
) -> None:
    """Entry point of one supervised worker process (spawned: imports fresh, settings from env)."""
    from .wiring import build
    from .worker import Worker, run_worker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    base = index * _SLOTS
    # the child may inherit a SIGINT-ignoring disposition from the supervisor's start-up; restore it
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def report(worker: Worker) -> None:
        shared[base + _INFLIGHT] = len(worker._inflight)
        shared[base + _PROCESSED] = worker.processed
        shared[base + _STARTED] = 1 if worker.started and not worker.stopping else 0

    settings = Settings(**overrides)
    worker_id = f"{socket.gethostname()}-{os.getpid()}-p{index}"
    asyncio.run(
        run_worker(
            build(settings),
            worker_id=worker_id,
            protection=TaskProtection(None),  # the supervisor owns scale-in protection
            on_load=report,
            stop_when=lambda: os.getppid() != parent_pid,
        )
    )
    shared[base + _STARTED] = 0
    shared[base + _INFLIGHT] = 0


class _Child:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: multiprocessing.process.BaseProcess | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.backoff = 0.0
        self.restart_at = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()


class Supervisor:
    """Runs ``processes`` worker children; duck-types the worker for :class:`HealthServer`."""

    def __init__(
        self,
        settings: Settings,
        processes: int,
        *,
        overrides: dict[str, Any] | None = None,
        log_level: str = "info",
        grace_seconds: float = 20.0,
        protection: TaskProtection | None = None,
        poll_seconds: float = 0.05,
    ) -> None:
        self.settings = settings
        self.processes = processes
        self.overrides = dict(overrides or {})
        self.log_level = log_level
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self.protection = protection or TaskProtection(os.environ.get("ECS_AGENT_URI"))
        self._ctx = multiprocessing.get_context("spawn")
        self.shared: Any = self._ctx.Array("q", processes * _SLOTS, lock=False)
        self.children = [_Child(i) for i in range(processes)]
        self._stopping = asyncio.Event()
        self._running = False
        self._queue: Any = None

    # -- what HealthServer reads
    @property
    def alive(self) -> bool:
        if self._stopping.is_set():
            return True
        return self._running and all(child.alive for child in self.children)

    @property
    def started(self) -> bool:
        """Readiness: every worker process has started its claim loop."""
        return self._running and self.children_started()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def inflight(self) -> int:
        return sum(int(self.shared[c.index * _SLOTS + _INFLIGHT]) for c in self.children)

    @property
    def busy(self) -> bool:
        return self.inflight() > 0

    def children_started(self) -> bool:
        return all(c.alive and bool(self.shared[c.index * _SLOTS + _STARTED]) for c in self.children)

    async def ping(self) -> None:
        if self._queue is None:
            from .wiring import build_queue

            self._queue = build_queue(self.settings)
        await self._queue.ping()

    def status(self) -> dict[str, Any]:
        children: list[dict[str, Any]] = [
            {
                "index": c.index,
                "pid": c.proc.pid if c.proc is not None else None,
                "alive": c.alive,
                "started": bool(self.shared[c.index * _SLOTS + _STARTED]),
                "inflight": int(self.shared[c.index * _SLOTS + _INFLIGHT]),
                "processed": int(self.shared[c.index * _SLOTS + _PROCESSED]),
                "restarts": c.restarts,
            }
            for c in self.children
        ]
        inflight = sum(c["inflight"] for c in children)
        return {
            "worker_id": f"{socket.gethostname()}-{os.getpid()}-supervisor",
            "processes": self.processes,
            "busy": inflight > 0,
            "inflight": inflight,
            "concurrency": self.processes * int(self.settings.worker_concurrency),
            "processed": sum(c["processed"] for c in children),
            "stopping": self.stopping,
            "scale_in_protected": self.protection.enabled,
            "children": children,
        }

    # -- lifecycle
    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    def _spawn(self, child: _Child) -> None:
        base = child.index * _SLOTS
        for slot in range(_SLOTS):  # a restarted child counts from zero
            self.shared[base + slot] = 0
        proc = self._ctx.Process(
            target=_child_main,
            args=(child.index, self.shared, self.overrides, self.log_level, os.getpid()),
            name=f"agent-app-worker-{child.index}",
            daemon=False,
        )
        proc.start()
        child.proc = proc
        child.started_at = time.monotonic()
        log.info("worker process %d started (pid %s)", child.index, proc.pid)

    def _check(self, child: _Child) -> None:
        """Restart a dead child after its backoff."""
        if child.alive:
            if time.monotonic() - child.started_at > 30.0:
                child.backoff = 0.0
            return
        now = time.monotonic()
        if child.proc is not None:  # just noticed the death
            code = child.proc.exitcode
            child.proc.join(0)
            child.proc = None
            base = child.index * _SLOTS
            self.shared[base + _STARTED] = 0
            self.shared[base + _INFLIGHT] = 0  # its leases lapse and are reclaimed by XAUTOCLAIM
            child.backoff = min(10.0, child.backoff * 2) if child.backoff else 0.5
            child.restart_at = now + child.backoff
            log.warning(
                "worker process %d exited (code %s); restarting in %.1f s", child.index, code, child.backoff
            )
            return
        if now >= child.restart_at:
            child.restarts += 1
            self._spawn(child)

    async def run(self) -> None:
        log.info("supervisor %d: starting %d worker processes", os.getpid(), self.processes)
        for child in self.children:
            self._spawn(child)
        self._running = True
        self.protection.start()
        try:
            while not self._stopping.is_set():
                for child in self.children:
                    self._check(child)
                self.protection.update(self.busy)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)
            await self._shutdown()
        finally:
            for child in self.children:  # never leave a child behind
                if child.proc is not None and child.proc.is_alive():
                    child.proc.kill()
                    child.proc.join(5)
            await self.protection.close()
            if self._queue is not None:
                with contextlib.suppress(Exception):
                    await self._queue.close()

    async def _shutdown(self) -> None:
        live = [c for c in self.children if c.proc is not None and c.proc.is_alive()]
        log.info("supervisor: stopping %d worker process(es), %d task(s) in flight", len(live), self.inflight())
        for child in live:
            assert child.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.proc.pid or 0, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds + 15.0
        while any(c.proc is not None and c.proc.is_alive() for c in live) and time.monotonic() < deadline:
            self.protection.update(self.busy)  # protected while a child still drains work
            await asyncio.sleep(self.poll_seconds)
        for child in live:
            assert child.proc is not None
            if child.proc.is_alive():
                log.warning("worker process %d did not exit in time; SIGKILL", child.index)
                child.proc.kill()
            child.proc.join(5)
        self.protection.update(False)


async def run_supervisor(
    settings: Settings,
    processes: int,
    *,
    overrides: dict[str, Any] | None = None,
    log_level: str = "info",
    health_port: int | None = None,
    health_host: str = "0.0.0.0",
    install_signals: bool = True,
) -> None:
    """Run ``processes`` worker children under a supervisor (and its health server) until SIGTERM."""
    supervisor = Supervisor(settings, processes, overrides=overrides, log_level=log_level)
    health = HealthServer(supervisor, health_host, health_port) if health_port is not None else None
    if install_signals:
        supervisor.install_signal_handlers()
    try:
        if health is not None:
            await health.start()
        await supervisor.run()
    finally:
        if health is not None:
            await health.close()
