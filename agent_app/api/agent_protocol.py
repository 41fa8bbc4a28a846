"""The LangChain Agent Protocol's runs and threads API (openapi.json 0.1.6), at the spec's paths.

A thread is a session (``thread_id`` is the ``session_id``); a run is a task (``run_id`` is the
task id's hex as a UUID: ``task_<hex>`` <-> ``<hex>`` with dashes). Every run goes through
:class:`~agent_app.core.service.AgentService` exactly like ``/v1/runs`` (wait, stream: in this
process) and ``/webhook`` (background: the queue, the worker, the signed callback to ``webhook``),
so authentication, rate limits, session policy and scoping apply unchanged. Threads and the
protocol's run options live in the state store (:mod:`agent_infra.agent_app.core.threads`), owned by the
caller's principal.

Errors are the spec's ``ErrorResponse``: a JSON string, one sentence. The spec's ``RunStatus`` has no
``running``: a run being executed reports ``pending`` and its thread ``busy``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError

from ..core.models import DEFAULT_PRINCIPAL, Chunk, RunInput, RunStatus, Task, scoped
from ..core.service import AgentService, IdempotencyConflict, SessionBusy, SessionPolicy
from ..core.threads import ThreadExists, ThreadRegistry
from ..wiring import Container
from .agent_protocol_schemas import Message, RunCreate, ThreadCreate, ThreadSearchRequest
from .security import Principal
from .ws_frames import describe

AGENT_ID = "agent"
_HEX_ID = re.compile(r"^(task|sess)_([0-9a-f]{32})$")
_STRATEGY: dict[str, SessionPolicy] = {"reject": "reject", "interrupt": "interrupt", "enqueue": "enqueue"}
_SUPPORTED_MODES = ("values", "updates", "debug")
Body = TypeVar("Body", bound=BaseModel)


class ProtocolError(Exception):
    """Answered as the spec's ErrorResponse: ``status`` and a JSON string."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


def install_agent_protocol(
    app: FastAPI,
    container: Container,
    authed: Callable[..., Any],
    check_callback_url: Callable[[str, bool], None],
) -> None:
    """Mount the routes at the root (``/runs``, ``/threads``: no clash with ``/v1``, ``/webhook``)."""

    @app.exception_handler(ProtocolError)
    async def _protocol_error(request: Request, exc: ProtocolError) -> JSONResponse:
        return JSONResponse(exc.sentence, exc.status)

    app.include_router(_router(container, authed, check_callback_url))


def _router(
    container: Container,
    authed: Callable[..., Any],
    check_callback_url: Callable[[str, bool], None],
) -> APIRouter:
    # Described by the published Agent Protocol document (tests/app/specs/agent_protocol_openapi.json),
    # which clients are generated from; our own /openapi.json documents the /v1 API.
    router = APIRouter(tags=["agent protocol"], include_in_schema=False)
    service: AgentService = container.service
    registry = ThreadRegistry(container.state, container.settings.state_ttl_seconds)
    allow_private = container.settings.callback_allow_private
    Auth = Depends(authed)

    # -- threads ---------------------------------------------------------------------------------
    @router.post("/threads", summary="Create Thread", operation_id="create_thread_threads_post")
    async def create_thread(request: Request, principal: Principal = Auth) -> Any:
        body = await _parse(request, ThreadCreate)
        thread_id = str(body.thread_id) if body.thread_id else None
        try:
            record = await registry.create(_owner(principal), thread_id, body.metadata, body.if_exists)
        except ThreadExists as exc:
            raise ProtocolError(409, str(exc)) from None
        return await _thread_view(record)

    @router.post("/threads/search", summary="Search Threads", operation_id="search_threads_threads_search_post")
    async def search_threads(request: Request, principal: Principal = Auth) -> Any:
        body = await _parse(request, ThreadSearchRequest)
        views: list[dict[str, Any]] = []
        wanted = body.offset + body.limit
        async for record in registry.list(_owner(principal)):
            if body.metadata and any(record["metadata"].get(k) != v for k, v in body.metadata.items()):
                continue
            view = await _thread_view(record)
            if body.status and view["status"] != body.status:
                continue
            if body.values and any(view["values"].get(k) != v for k, v in body.values.items()):
                continue
            views.append(view)
            if len(views) >= wanted:  # newest first: the page is complete
                break
        return views[body.offset : wanted]

    @router.get("/threads/{thread_id}", summary="Get Thread", operation_id="get_thread_threads__thread_id__get")
    async def get_thread(thread_id: str, principal: Principal = Auth) -> Any:
        return await _thread_view(await _thread(principal, thread_id))

    @router.get(
        "/threads/{thread_id}/history",
        summary="Get Thread History",
        operation_id="get_thread_history_threads__thread_id__history_get",
    )
    async def thread_history(
        thread_id: str, principal: Principal = Auth, limit: int = 10, before: str | None = None
    ) -> Any:
        if limit < 1:
            raise ProtocolError(422, "The query parameter 'limit' must be at least 1.")
        record = await _thread(principal, thread_id)
        tasks = await _tasks(record["runs"])
        states: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        for task in tasks:  # oldest first: each finished run is one checkpoint of the thread
            if not task.status.terminal:
                continue
            messages = [*messages, *_turn(task)]
            states.append(
                {
                    "checkpoint": {"checkpoint_id": _run_id(task.id), "thread_id": thread_id},
                    "values": _values(task),
                    "messages": messages,
                    "metadata": {"run_id": _run_id(task.id), "status": _status(task.status)},
                }
            )
        states.reverse()
        if before is not None:
            ids = [s["checkpoint"]["checkpoint_id"] for s in states]
            if before not in ids:
                raise ProtocolError(404, f"Checkpoint {before} is not in the history of thread {thread_id}.")
            states = states[ids.index(before) + 1 :]
        return states[:limit]

    # -- runs on a thread -----------------------------------------------------------------------
    @router.get(
        "/threads/{thread_id}/runs", summary="List Runs", operation_id="list_runs_http_threads__thread_id__runs_get"
    )
    async def list_runs(thread_id: str, principal: Principal = Auth, limit: int = 10, offset: int = 0) -> Any:
        if limit < 1 or offset < 0:
            raise ProtocolError(
                422, "The query parameters 'limit' (at least 1) and 'offset' (at least 0) are out of range."
            )
        record = await _thread(principal, thread_id)
        newest = list(reversed(record["runs"]))[offset : offset + limit]
        tasks = await _tasks(newest)
        return [_run_view(t, await registry.get_run(_run_id(t.id)), service.session_policy) for t in tasks]

    @router.post(
        "/threads/{thread_id}/runs",
        summary="Create Background Run",
        operation_id="create_run_threads__thread_id__runs_post",
    )
    async def create_run(thread_id: str, request: Request, principal: Principal = Auth) -> Any:
        body = await _run_body(request, stateful=True)
        await _thread_for_run(principal, thread_id, body)
        return await _background(principal, body, thread_id)

    @router.post(
        "/threads/{thread_id}/runs/wait",
        summary="Create Run, Wait for Output",
        operation_id="wait_run_threads__thread_id__runs_wait_post",
    )
    async def wait_run(thread_id: str, request: Request, principal: Principal = Auth) -> Any:
        body = await _run_body(request, stateful=True)
        await _thread_for_run(principal, thread_id, body)
        return await _wait(principal, body, thread_id)

    @router.post(
        "/threads/{thread_id}/runs/stream",
        summary="Create Run, Stream Output",
        operation_id="stream_run_threads__thread_id__runs_stream_post",
    )
    async def stream_run(thread_id: str, request: Request, principal: Principal = Auth) -> Any:
        body = await _run_body(request, stateful=True)
        await _thread_for_run(principal, thread_id, body)
        return await _stream(principal, body, thread_id)

    @router.get(
        "/threads/{thread_id}/runs/{run_id}",
        summary="Get Run",
        operation_id="get_run_http_threads__thread_id__runs__run_id__get",
    )
    async def get_thread_run(thread_id: str, run_id: str, principal: Principal = Auth) -> Any:
        await _thread(principal, thread_id)
        task, record = await _run(principal, run_id, thread_id)
        return _run_view(task, record, service.session_policy)

    @router.get(
        "/threads/{thread_id}/runs/{run_id}/wait",
        summary="Wait for Run output",
        operation_id="join_run_http_threads__thread_id__runs__run_id__join_get",
    )
    async def join_run(thread_id: str, run_id: str, principal: Principal = Auth) -> Any:
        await _thread(principal, thread_id)
        task, record = await _run(principal, run_id, thread_id)
        deadline = time.monotonic() + service.run_timeout_seconds + 60
        while not task.status.terminal and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            task, record = await _run(principal, run_id, thread_id)
        return _wait_view(task, record, service.session_policy)

    @router.get(
        "/threads/{thread_id}/runs/{run_id}/stream",
        summary="Stream output from Run",
        operation_id="stream_run_http_threads__thread_id__runs__run_id__join_get",
    )
    async def join_stream(thread_id: str, run_id: str, principal: Principal = Auth) -> Any:
        await _thread(principal, thread_id)
        task, _record = await _run(principal, run_id, thread_id)

        async def events() -> AsyncIterator[bytes]:
            yield _sse("metadata", {"run_id": run_id, "thread_id": thread_id})
            async for chunk in _steps_of(task):
                yield _sse("updates", _chunk_event(chunk, "updates"), chunk.id)
            final = await service.get_task(task.id) or task
            yield _sse("values", _values(final) | {"messages": _turn(final)})
            yield _sse("end", {"status": _status(final.status)})

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    async def _steps_of(task: Task) -> AsyncIterator[Chunk]:
        """The run's steps from now on, from the thread's event stream, until its final status."""
        if task.status.terminal:
            return
        after = await container.state.cursor(task.session_key)
        current = await service.get_task(task.id)  # it may have ended before the cursor was taken
        if current is None or current.status.terminal:
            return
        deadline = time.monotonic() + service.run_timeout_seconds + 60  # a run never outlives this
        async for chunk in container.state.subscribe(task.session_key, after):
            if time.monotonic() > deadline:
                return
            if chunk.task_id != task.id:  # heartbeats, other runs of the thread
                continue
            if chunk.type == "status":
                if chunk.content in {s.value for s in RunStatus if s.terminal}:
                    return
                continue
            yield chunk

    # -- stateless runs (a new thread each) -----------------------------------------------------
    @router.post("/runs", summary="Create Background Run", operation_id="run_stateless_runs_post")
    async def create_stateless_run(request: Request, principal: Principal = Auth) -> Any:
        body = await _run_body(request, stateful=False)
        return await _background(principal, body, await _stateless_thread(principal, body))

    @router.post("/runs/wait", summary="Create Run, Wait for Output", operation_id="wait_run_stateless_runs_wait_post")
    async def wait_stateless_run(request: Request, principal: Principal = Auth) -> Any:
        body = await _run_body(request, stateful=False)
        return await _wait(principal, body, await _stateless_thread(principal, body))

    @router.post(
        "/runs/stream", summary="Create Run, Stream Output", operation_id="stream_run_stateless_runs_stream_post"
    )
    async def stream_stateless_run(request: Request, principal: Principal = Auth) -> Any:
        body = await _run_body(request, stateful=False)
        return await _stream(principal, body, await _stateless_thread(principal, body))

    @router.get("/runs/{run_id}", summary="Get Run (any thread; an extension of the spec)")
    async def get_run(run_id: str, principal: Principal = Auth) -> Any:
        task, record = await _run(principal, run_id, None)
        return _run_view(task, record, service.session_policy)

    # -- the three ways to run ------------------------------------------------------------------
    async def _background(principal: Principal, body: RunCreate, thread_id: str) -> dict[str, Any]:
        if body.webhook:
            try:
                check_callback_url(body.webhook, allow_private)
            except HTTPException as exc:
                raise ProtocolError(422, _sentence_of(exc, "webhook")) from None
        run = _run_input(body, thread_id)
        try:
            outcome = await service.submit(run, callback_url=body.webhook, policy=_STRATEGY[body.multitask_strategy],
                                           principal=principal.id)
        except SessionBusy:
            raise ProtocolError(409, _busy(thread_id)) from None
        except IdempotencyConflict as exc:  # not reachable without a key; kept so it never is a 500
            raise ProtocolError(409, str(exc)) from None
        record = await _remember(principal, body, thread_id, outcome.task.id)
        return _run_view(outcome.task, record, service.session_policy)

    async def _wait(principal: Principal, body: RunCreate, thread_id: str) -> dict[str, Any]:
        _in_process_only(body)
        run = _run_input(body, thread_id)
        await _reject_if_busy(principal, body, thread_id)
        task_id = ""
        record: dict[str, Any] | None = None
        try:
            async for chunk in service.run_stream(run, policy=_STRATEGY[body.multitask_strategy], principal=principal.id):
                if not task_id and chunk.task_id:
                    task_id = chunk.task_id
                    record = await _remember(principal, body, thread_id, task_id)
        except SessionBusy:
            raise ProtocolError(409, _busy(thread_id)) from None
        task = await service.get_task(task_id) if task_id else None
        if task is None:
            raise ProtocolError(409, _busy(thread_id))
        return _wait_view(task, record, service.session_policy)

    async def _stream(principal: Principal, body: RunCreate, thread_id: str) -> StreamingResponse:
        _in_process_only(body)
        modes = [body.stream_mode] if isinstance(body.stream_mode, str) else list(body.stream_mode)
        unsupported = [m for m in modes if m not in _SUPPORTED_MODES]
        if unsupported:
            raise ProtocolError(
                422,
                f"The field 'stream_mode' has {', '.join(repr(m) for m in unsupported)}; "
                f"this agent streams {', '.join(_SUPPORTED_MODES)}.",
            )
        run = _run_input(body, thread_id)
        await _reject_if_busy(principal, body, thread_id)

        async def events() -> AsyncIterator[bytes]:
            task_id = ""
            try:
                async for chunk in service.run_stream(run, policy=_STRATEGY[body.multitask_strategy], principal=principal.id):
                    if not task_id and chunk.task_id:
                        task_id = chunk.task_id
                        await _remember(principal, body, thread_id, task_id)
                        yield _sse("metadata", {"run_id": _run_id(task_id), "thread_id": thread_id})
                    for mode in ("updates", "debug"):
                        if mode in modes:
                            yield _sse(mode, _chunk_event(chunk, mode), chunk.id)
            except SessionBusy:
                yield _sse("error", {"error": "busy", "message": _busy(thread_id)})
                return
            task = await service.get_task(task_id) if task_id else None
            if task is not None and "values" in modes:
                yield _sse("values", _values(task) | {"messages": _turn(task)})
            yield _sse("end", {"status": _status(task.status) if task else "error"})

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    # -- helpers that need the container ------------------------------------------------------
    async def _thread(principal: Principal, thread_id: str) -> dict[str, Any]:
        record = await registry.get(_owner(principal), _uuid(thread_id, "thread_id"))
        if record is None:
            raise ProtocolError(404, f"Thread {thread_id} not found.")
        return record

    async def _thread_for_run(principal: Principal, thread_id: str, body: RunCreate) -> None:
        thread_id = _uuid(thread_id, "thread_id")
        if await registry.get(_owner(principal), thread_id) is not None:
            return
        if body.if_not_exists != "create":
            raise ProtocolError(404, f"Thread {thread_id} not found; create it first or send if_not_exists='create'.")
        try:
            await registry.create(_owner(principal), thread_id, {}, "do_nothing")
        except ThreadExists:  # someone else's thread with this id
            raise ProtocolError(404, f"Thread {thread_id} not found.") from None

    async def _stateless_thread(principal: Principal, body: RunCreate) -> str:
        thread_id = str(uuid.uuid4())
        if body.on_completion == "keep":
            await registry.create(_owner(principal), thread_id, {}, "do_nothing")
        return thread_id

    async def _remember(principal: Principal, body: RunCreate, thread_id: str, task_id: str) -> dict[str, Any]:
        record = {
            "owner": _owner(principal),
            "thread_id": thread_id,
            "multitask_strategy": body.multitask_strategy,
            "kwargs": body.model_dump(mode="json", include=body.model_fields_set | {"input"}, exclude_none=True),
        }
        await registry.put_run(_run_id(task_id), record)
        await registry.add_run(_owner(principal), thread_id, _run_id(task_id))
        return record

    async def _reject_if_busy(principal: Principal, body: RunCreate, thread_id: str) -> None:
        # run_stream finds out only once the stream started; the spec's 409 needs it before
        if body.multitask_strategy == "reject" and await container.state.active_run(scoped(principal.id, thread_id)):
            raise ProtocolError(409, _busy(thread_id))

    async def _run(principal: Principal, run_id: str, thread_id: str | None) -> tuple[Task, dict[str, Any] | None]:
        task = await service.get_task(_task_id(run_id), principal.id)
        record = await registry.get_run(_uuid(run_id, "run_id"))
        if (
            task is None
            or (record is not None and record.get("owner") != _owner(principal))
            or (thread_id is not None and _thread_id(task.session_id) != thread_id)
        ):
            raise ProtocolError(404, f"Run {run_id} not found.")
        return task, record

    async def _tasks(run_ids: list[str]) -> list[Task]:
        found = await asyncio.gather(*(service.get_task(_task_id(r)) for r in run_ids))
        return [t for t in found if t is not None]

    async def _thread_view(record: dict[str, Any]) -> dict[str, Any]:
        thread_id = record["thread_id"]
        session_key = scoped(str(record.get("owner") or DEFAULT_PRINCIPAL), thread_id)
        last = await service.get_task(_task_id(record["runs"][-1])) if record["runs"] else None
        if await container.state.active_run(session_key) or (last is not None and not last.status.terminal):
            status = "busy"
        elif last is not None and last.status in (RunStatus.error, RunStatus.timeout):
            status = "error"
        elif last is not None and last.status == RunStatus.interrupted:
            status = "interrupted"
        else:
            status = "idle"
        session = await container.state.get_session(session_key) or {}
        return {
            "thread_id": thread_id,
            "created_at": _iso(record["created_at"]),
            "updated_at": _iso(record["updated_at"]),
            "metadata": record["metadata"],
            "status": status,
            "values": _values(last) if last is not None else {},
            "messages": [{"role": m["role"], "content": m["content"]} for m in session.get("history", [])],
        }

    return router


# -- reading requests ----------------------------------------------------------------------------
async def _parse(request: Request, model: type[Body]) -> Body:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ProtocolError(422, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError(422, "The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["type"] == "extra_forbidden":
            field = ".".join(str(p) for p in error["loc"])
            raise ProtocolError(422, f"Unknown field '{field}': this server does not read it.") from None
        raise ProtocolError(422, describe(exc)) from None


async def _run_body(request: Request, *, stateful: bool) -> RunCreate:
    body = await _parse(request, RunCreate)
    wrong = "on_completion" if stateful else "if_not_exists"
    if wrong in body.model_fields_set:
        kind = "a run on a thread" if stateful else "a stateless run"
        raise ProtocolError(422, f"The field '{wrong}' does not apply to {kind}.")
    _unsupported(body)
    return body


def _unsupported(body: RunCreate) -> None:
    """Spec options this agent cannot honour: refused, never silently ignored."""
    if body.agent_id not in (None, AGENT_ID):
        raise ProtocolError(404, f"Agent {body.agent_id} not found; this server runs the agent '{AGENT_ID}'.")
    if body.config:
        raise ProtocolError(422, "The field 'config' is not supported: this agent has no configurable options.")
    if body.stream_subgraphs:
        raise ProtocolError(422, "The field 'stream_subgraphs' cannot be true: this agent has no subgraphs.")
    if body.after_seconds:
        raise ProtocolError(422, "The field 'after_seconds' is not supported: runs start when they are created.")
    if body.multitask_strategy == "rollback":
        raise ProtocolError(
            422, "The field 'multitask_strategy' cannot be 'rollback' here; use reject, interrupt or enqueue."
        )


def _in_process_only(body: RunCreate) -> None:
    if body.webhook:
        raise ProtocolError(422, "The field 'webhook' is for background runs (POST /runs or /threads/{id}/runs).")
    if body.on_disconnect == "continue":
        raise ProtocolError(
            422, "The field 'on_disconnect' cannot be 'continue' here; start a background run and poll it instead."
        )


def _run_input(body: RunCreate, thread_id: str) -> RunInput:
    message = _message(body.input, body.messages)
    try:
        return RunInput(message=message, session_id=thread_id, metadata=body.metadata)
    except ValidationError as exc:
        raise ProtocolError(422, describe(exc).replace("'message'", "'input'")) from None


_INPUT_SHAPES = (
    'The field \'input\' must be the message as a string, {"message": "..."}, or '
    '{"messages": [{"role": "user", "content": "..."}]}.'
)


def _message(value: Any, messages: list[Message] | None) -> str:
    """The user's message from ``input`` (a string, ``{"message"}``, ``{"messages"}``) or ``messages``."""
    if messages:
        return _last_user_text([m.model_dump() for m in messages])
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("message"), str):
            return value["message"]
        if isinstance(value.get("messages"), list):
            return _last_user_text(value["messages"])
    raise ProtocolError(422, _INPUT_SHAPES)


def _last_user_text(messages: list[Any]) -> str:
    for item in reversed(messages):
        if isinstance(item, dict) and item.get("role") in ("user", "human"):
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    raise ProtocolError(422, "The messages hold no message with role 'user' to answer.")


# -- ids and views -------------------------------------------------------------------------------
def _run_id(task_id: str) -> str:
    return _thread_id(task_id)


def _thread_id(session_id: str) -> str:
    """``task_<hex>``/``sess_<hex>`` as the UUID they encode; other session names as they are."""
    match = _HEX_ID.match(session_id)
    return str(uuid.UUID(match.group(2))) if match else session_id


def _task_id(run_id: str) -> str:
    return f"task_{uuid.UUID(_uuid(run_id, 'run_id')).hex}"


def _uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ProtocolError(422, f"The path parameter '{field}' must be a UUID; got {value[:80]!r}.") from None


def _owner(principal: Principal) -> str:
    return principal.id  # the tenant: every key of one principal sees its threads


def _status(status: RunStatus) -> str:
    return "pending" if status == RunStatus.running else status.value


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def _run_view(task: Task, record: dict[str, Any] | None, default_strategy: str) -> dict[str, Any]:
    return {
        "run_id": _run_id(task.id),
        "thread_id": _thread_id(task.session_id),
        "agent_id": AGENT_ID,
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "status": _status(task.status),
        "metadata": task.metadata,
        "kwargs": record["kwargs"] if record else {"input": task.message},
        # a run started outside the protocol (/v1, /webhook, WebSocket) ran under the session policy
        "multitask_strategy": record["multitask_strategy"] if record else default_strategy,
    }


def _values(task: Task) -> dict[str, Any]:
    values: dict[str, Any] = {"output": task.result}
    if task.error:
        values["error"] = task.error
    return values


def _turn(task: Task) -> list[dict[str, Any]]:
    turn = [{"role": "user", "content": task.message}]
    if task.result is not None:
        turn.append({"role": "assistant", "content": task.result})
    return turn


def _wait_view(task: Task, record: dict[str, Any] | None, default_strategy: str) -> dict[str, Any]:
    return {"run": _run_view(task, record, default_strategy), "values": _values(task), "messages": _turn(task)}


def _chunk_event(chunk: Chunk, mode: str) -> dict[str, Any]:
    if mode == "debug":
        return chunk.model_dump()
    return {AGENT_ID: {"type": chunk.type, "content": chunk.content}}


def _sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def _busy(thread_id: str) -> str:
    return (
        f"Thread {thread_id} has a run in progress; wait for it, or send multitask_strategy "
        "'enqueue' (run after it) or 'interrupt' (stop it)."
    )


def _sentence_of(exc: HTTPException, field: str) -> str:
    detail = exc.detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        detail = detail[0].get("msg", "")
    return f"The field '{field}' is invalid: {str(detail).replace('callback_url', field)}."
