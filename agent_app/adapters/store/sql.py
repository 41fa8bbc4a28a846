"""Tasks, results and the callback outbox in PostgreSQL or SQLite, through SQLAlchemy 2 async.

One SQL layer for both: ``postgresql+asyncpg://`` in production, ``sqlite+aiosqlite:///file``
as the embedded default. The schema is created on start (``init``); columns added later are
added by :func:`_migrate` so an older database upgrades in place.
Exactly-once results: ``finish`` is a conditional UPDATE (only while not terminal), so a task
redelivered after its worker died records one result however many times it ran.

Worker fast path (:meth:`SqlStore.record_result`): a run writes its row once, with the final
result (the ``running`` status lives in the session lock in Redis meanwhile). Results of concurrent
runs go out as one multi-row ``INSERT ... ON CONFLICT DO UPDATE ... WHERE status not terminal
RETURNING id`` (:class:`_ResultWriter`): the returned ids are the runs whose result was recorded
first, so each run still learns whether it won (exactly-once results), and the callback outbox
rows of the winners are inserted in the same transaction.

Group commit: the worker's other writes (``start``, ``finish``, ``schedule_callback``) from concurrent
runs share one transaction (:class:`_GroupCommit`): each call still returns only after its
write is committed, but N concurrent runs cost one commit (one fsync on SQLite) instead of N.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ...core.models import DEFAULT_PRINCIPAL, TERMINAL, RunStatus, Task
from ...core.ports import BackendUnavailable

metadata = sa.MetaData()

tasks = sa.Table(
    "agent_tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(128), nullable=False, index=True),
    sa.Column("principal", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("callback_url", sa.Text),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("result", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("runs", sa.Integer, nullable=False, default=0),
    sa.Column("worker_id", sa.String(128)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

callbacks = sa.Table(
    "agent_callbacks",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("task_id", sa.String(64), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.Float, nullable=False, index=True),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
)

_TERMINAL = [s.value for s in TERMINAL]

log = logging.getLogger("agent_app.store")

Op = Callable[[AsyncConnection], Awaitable[Any]]


class _GroupCommit:
    """Run write operations submitted concurrently in one transaction; each caller gets its own
    result once the shared transaction has committed. While one batch commits, the next one
    gathers. If a batch fails, its operations are retried one transaction each, so one bad
    write never fails another caller's."""

    def __init__(self, engine: AsyncEngine, max_batch: int = 128) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: list[tuple[Op, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, op: Op) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests, Lambda): start afresh
            self._loop, self._queue, self._flusher = loop, [], None
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let callers scheduled in the same tick join the first batch
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await self._commit(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=exc)
                    continue
                log.debug("group commit of %d failed (%s); retrying one by one", len(batch), exc)
                for item in batch:
                    try:
                        (result,) = await self._commit([item])
                        _settle(item[1], result)
                    except Exception as one_exc:
                        _settle(item[1], exc=one_exc)
                continue
            for (_op, fut), result in zip(batch, results, strict=True):
                _settle(fut, result)

    async def _commit(self, batch: list[tuple[Op, asyncio.Future[Any]]]) -> list[Any]:
        async with self.engine.begin() as conn:
            return [await op(conn) for op, _fut in batch]


def _settle(fut: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


class _ResultWriter:
    """Batches :meth:`SqlStore.record_result` calls of one event-loop tick (and those arriving while
    a batch commits) into one statement per table and one transaction. A failed batch is retried
    one row per transaction, so one bad row never fails another caller's."""

    def __init__(self, store: SqlStore, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: list[tuple[dict[str, Any], tuple[str, dict[str, Any]] | None, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stmt: Any = None

    async def write(self, row: dict[str, Any], callback: tuple[str, dict[str, Any]] | None) -> bool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._queue, self._flusher = loop, [], None
        fut: asyncio.Future[bool] = loop.create_future()
        self._queue.append((row, callback, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        await asyncio.sleep(0)
        while self._queue:
            # a task id at most once per batch (a twin in the same statement would be judged by the
            # same returned id, and PostgreSQL refuses to upsert one row twice): twins wait
            batch: list[Any] = []
            rest: list[Any] = []
            seen: set[str] = set()
            for item in self._queue:
                if len(batch) < self.max_batch and item[0]["id"] not in seen:
                    seen.add(item[0]["id"])
                    batch.append(item)
                else:
                    rest.append(item)
            self._queue = rest
            try:
                won = await self._commit(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][2], exc=exc)
                    continue
                log.debug("result batch of %d failed (%s); retrying one by one", len(batch), exc)
                for item in batch:
                    try:
                        _settle(item[2], item[0]["id"] in await self._commit([item]))
                    except Exception as one_exc:
                        _settle(item[2], exc=one_exc)
                continue
            for row, _cb, fut in batch:
                _settle(fut, row["id"] in won)

    def _statement(self) -> Any:
        """The upsert, built once: executed with a list of rows, SQLAlchemy sends it as multi-row
        VALUES ("insertmanyvalues") with RETURNING, from one cached compilation."""
        if self._stmt is None:
            stmt = self.store._insert(tasks)
            excluded = stmt.excluded
            self._stmt = stmt.on_conflict_do_update(
                index_elements=[tasks.c.id],
                set_={
                    "status": excluded.status,
                    "result": excluded.result,
                    "error": excluded.error,
                    "steps": excluded.steps,
                    "attempts": excluded.attempts,
                    "worker_id": excluded.worker_id,
                    "updated_at": excluded.updated_at,
                    "runs": sa.case((tasks.c.runs > excluded.runs, tasks.c.runs), else_=excluded.runs),
                },
                # constants inlined (not an expanding IN parameter), which executemany refuses
                where=sa.and_(*(tasks.c.status != sa.literal_column(f"'{v}'") for v in _TERMINAL)),
            ).returning(tasks.c.id)
        return self._stmt

    async def _commit(self, batch: list[Any]) -> set[str]:
        store = self.store
        rows = [item[0] for item in batch]
        stmt = self._statement()
        async with store.engine.begin() as conn:
            won = {r[0] for r in (await conn.execute(stmt, rows)).all()}
            now = time.time()
            outbox = [
                {
                    "id": f"msg_{row['id']}",
                    "task_id": row["id"],
                    "url": cb[0],
                    "payload": cb[1],
                    "status": "pending",
                    "attempts": 0,
                    "next_at": now,
                    "created_at": now,
                }
                for row, cb, _fut in batch
                if cb is not None and row["id"] in won
            ]
            if outbox:
                await conn.execute(
                    store._insert(callbacks).on_conflict_do_nothing(index_elements=[callbacks.c.id]), outbox
                )
            for row in rows:  # a concurrent duplicate run lost: still count its run (diagnostics)
                if row["id"] not in won:
                    await conn.execute(
                        tasks.update()
                        .where(tasks.c.id == row["id"], tasks.c.runs < row["runs"])
                        .values(runs=row["runs"])
                    )
        return won


class SqlStore:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10)
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._group = _GroupCommit(self.engine)
        self._results = _ResultWriter(self)
        if url.startswith("sqlite"):
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._insert: Any = sqlite_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self._insert = pg_insert

    async def init(self) -> None:
        try:
            async with self.engine.begin() as conn:
                if self.url.startswith("sqlite"):
                    await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                await conn.run_sync(metadata.create_all)
                await conn.run_sync(_migrate)
        except (OSError, OperationalError, DBAPIError) as exc:
            raise BackendUnavailable(f"database: {exc}") from exc

    async def upsert(self, task: Task) -> None:
        row = _row(task)
        async with self.engine.begin() as conn:
            updated = await conn.execute(tasks.update().where(tasks.c.id == task.id).values(**row))
            if updated.rowcount == 0:
                await conn.execute(tasks.insert().values(id=task.id, runs=0, **row))

    async def get(self, task_id: str) -> Task | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(tasks.select().where(tasks.c.id == task_id))).mappings().first()
        return _task(row) if row else None

    async def start(self, task: Task, worker_id: str) -> Task | None:
        now = time.time()

        async def op(conn: AsyncConnection) -> Task | None:
            # one statement in the common case: insert the running row, or mark an existing
            # non-terminal one running again (a redelivery); a terminal row is left alone (rowcount 0)
            values = _row(task) | {"status": RunStatus.running.value, "worker_id": worker_id, "updated_at": now}
            stmt = self._insert(tasks).values(id=task.id, runs=1, **values)
            stmt = stmt.on_conflict_do_update(
                index_elements=[tasks.c.id],
                set_={
                    "status": RunStatus.running.value,
                    "worker_id": worker_id,
                    "updated_at": now,
                    "runs": tasks.c.runs + 1,
                    "attempts": task.attempts,
                },
                where=tasks.c.status.not_in(_TERMINAL),
            )
            res = await conn.execute(stmt)
            if res.rowcount:
                return task.model_copy(update={"status": RunStatus.running})
            row = (await conn.execute(tasks.select().where(tasks.c.id == task.id))).mappings().first()
            return _task(row) if row else None

        result: Task | None = await self._group.run(op)
        return result

    async def finish(
        self,
        task_id: str,
        status: RunStatus,
        result: str | None,
        error: str | None,
        steps: list[dict[str, Any]],
    ) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            res = await conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.status.not_in(_TERMINAL))
                .values(status=status.value, result=result, error=error, steps=steps, updated_at=time.time())
            )
            return bool(res.rowcount)

        return bool(await self._group.run(op))

    async def record_result(
        self,
        task: Task,
        status: RunStatus,
        result: str | None,
        error: str | None,
        steps: list[dict[str, Any]],
        *,
        worker_id: str,
        runs: int,
        callback: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """The worker's one write per run: the task's row with its outcome, unless the task is
        already terminal (then False: a duplicate run), plus the callback outbox row when this call
        recorded the result, in the same transaction. Batched across concurrent runs."""
        row = _row(task) | {
            "id": task.id,
            "status": status.value,
            "result": result,
            "error": error,
            "steps": steps,
            "worker_id": worker_id,
            "runs": runs,
        }
        return await self._results.write(row, callback)

    async def runs(self, task_id: str) -> int:
        """How many times a worker started the task (diagnostics and tests)."""
        async with self.engine.connect() as conn:
            value = await conn.scalar(sa.select(tasks.c.runs).where(tasks.c.id == task_id))
        return int(value or 0)

    async def schedule_callback(self, task_id: str, url: str, payload: dict[str, Any], next_at: float) -> None:
        callback_id = f"msg_{task_id}"

        async def op(conn: AsyncConnection) -> None:
            exists = await conn.scalar(sa.select(callbacks.c.id).where(callbacks.c.id == callback_id))
            if exists is None:
                await conn.execute(
                    callbacks.insert().values(
                        id=callback_id,
                        task_id=task_id,
                        url=url,
                        payload=payload,
                        status="pending",
                        attempts=0,
                        next_at=next_at,
                        created_at=time.time(),
                    )
                )

        await self._group.run(op)

    async def due_callbacks(self, now: float, limit: int = 50) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        callbacks.select()
                        .where(callbacks.c.status == "pending", callbacks.c.next_at <= now)
                        .order_by(callbacks.c.next_at)
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    async def claim_callback(self, callback_id: str, lease_until: float, seen_next_at: float) -> bool:
        """Compare-and-set on ``next_at`` so two workers never deliver the same attempt."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                callbacks.update()
                .where(
                    callbacks.c.id == callback_id,
                    callbacks.c.status == "pending",
                    callbacks.c.next_at == seen_next_at,
                )
                .values(next_at=lease_until)
            )
        return bool(res.rowcount)

    async def callback_attempted(
        self,
        callback_id: str,
        *,
        delivered: bool,
        give_up: bool,
        next_at: float | None,
        last_error: str | None,
    ) -> None:
        status = "delivered" if delivered else ("failed" if give_up else "pending")
        values: dict[str, Any] = {
            "status": status,
            "attempts": callbacks.c.attempts + 1,
            "last_error": last_error,
        }
        if next_at is not None:
            values["next_at"] = next_at
        async with self.engine.begin() as conn:
            await conn.execute(callbacks.update().where(callbacks.c.id == callback_id).values(**values))

    async def callback_status(self, task_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(callbacks.select().where(callbacks.c.task_id == task_id))).mappings().first()
        return dict(row) if row else None

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (OSError, OperationalError, DBAPIError) as exc:
            raise BackendUnavailable(f"database: {exc}") from exc

    async def close(self) -> None:
        await self.engine.dispose()


def _migrate(sync_conn: sa.Connection) -> None:
    inspector = sa.inspect(sync_conn)
    for table in (tasks, callbacks):
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                ddl = column.type.compile(dialect=sync_conn.dialect)
                sync_conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl}')


def _row(task: Task) -> dict[str, Any]:
    return {
        "session_id": task.session_id,
        "principal": task.principal,
        "status": task.status.value,
        "message": task.message,
        "metadata": task.metadata,
        "callback_url": task.callback_url,
        "idempotency_key": task.idempotency_key,
        "result": task.result,
        "error": task.error,
        "steps": task.steps,
        "attempts": task.attempts,
        "created_at": task.created_at,
        "updated_at": time.time(),
    }


def _task(row: Any) -> Task:
    return Task(
        id=row["id"],
        session_id=row["session_id"],
        principal=row["principal"] or DEFAULT_PRINCIPAL,
        status=RunStatus(row["status"]),
        message=row["message"],
        metadata=row["metadata"] or {},
        callback_url=row["callback_url"],
        idempotency_key=row["idempotency_key"],
        result=row["result"],
        error=row["error"],
        steps=row["steps"] or [],
        attempts=row["attempts"] or 0,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
