"""The FastAPI transport: translate HTTP/WebSocket to one service call and back. No logic here."""

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from .. import __version__
from .schemas import (
    CallbackView,
    ChunkOut,
    Problem,
    Readiness,
    RunRequest,
    RunResult,
    TaskAccepted,
    TaskView,
    WebhookRequest,
)
from .security import Authenticator, BodySizeLimit, Principal, RateLimiter, principal_of
from ..callbacks import verify
from ..core.models import Chunk, RunInput, RunStatus
from ..core.ports import BackendUnavailable
from ..core.service import AgentService, IdempotencyConflict, SessionBusy
from ..core.session import final_status
from ..metrics import ACCEPTED
from ..wiring import Container, build

log = logging.getLogger("agent_app.api")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing credentials"},
    403: {"model": Problem, "description": "Unknown API key"},
    413: {"model": Problem, "description": "Body too large"},
    429: {"model": Problem, "description": "Rate limited; see Retry-After"},
    503: {"model": Problem, "description": "A backing service is unavailable; retry"},
}


def create_app(
    container: Container | None = None,
    *,
    embedded_worker: bool | None = None,
    allow_anonymous: bool | None = None,
) -> FastAPI:
    """Build the app. ``embedded_worker`` runs a worker in-process (``agent-app serve``)."""
    container = container or build()
    settings = container.settings
    keys = settings.api_key_set()
    if allow_anonymous is None:
        allow_anonymous = settings.environment == "dev" and settings.is_loopback_bind()
    if not keys and not allow_anonymous:
        raise RuntimeError(
            "refusing to start without API keys: set AGENT_API_KEYS (or AGENT_API_KEYS_SECRET_ARN); "
            "unauthenticated access is only allowed in dev bound to loopback"
        )
    if embedded_worker is None:
        embedded_worker = settings.worker_embedded and settings.queue_backend == "memory"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        # Everything alive now (modules, app, adapters: ~110k objects) lives as long as the process.
        # Frozen, the collector stops re-scanning it: each full collection took 60-110 ms on the
        # accept path (its p99 tail); now it scans only what requests allocated (benchmarks/accept_wrk.py).
        gc.collect()
        gc.freeze()
        worker_task = None
        if embedded_worker:
            from ..worker import Worker

            app.state.worker = Worker(container, grace_seconds=5.0)
            worker_task = asyncio.create_task(app.state.worker.run())
        try:
            yield
        finally:
            if worker_task is not None:
                app.state.worker.stop()
                with contextlib.suppress(Exception):
                    await worker_task
            await container.close()

    app = FastAPI(
        title="agent-app",
        version=__version__,
        lifespan=lifespan,
        description="Agent service: sync and streamed runs, webhooks with callbacks, WebSocket sessions.",
    )
    app.state.container = container
    app.state.auth = Authenticator(keys, allow_anonymous)
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.worker = None
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    async def service_dep() -> AgentService:  # async: a sync dependency costs a thread-pool hop per request
        return container.service

    def authed(request: Request) -> Principal:
        principal = principal_of(request)
        request.app.state.limiter.enforce(principal.key_id if not principal.anonymous else _client(request))
        return principal

    Service = Annotated[AgentService, Depends(service_dep)]
    Auth = Annotated[Principal, Depends(authed)]

    @app.exception_handler(BackendUnavailable)
    async def _unavailable(request: Request, exc: BackendUnavailable) -> JSONResponse:
        log.warning("backend unavailable: %s", exc)
        return JSONResponse({"detail": f"service temporarily unavailable: {exc}"}, 503, {"Retry-After": "1"})

    @app.exception_handler(SessionBusy)
    async def _busy(request: Request, exc: SessionBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 409)

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    # -- health --------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz(request: Request) -> dict[str, Any]:
        worker = request.app.state.worker
        return {"status": "ok", "worker_busy": bool(worker and worker.busy)}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: every dependency checked",
        responses={503: {"model": Readiness}},
    )
    async def readyz() -> JSONResponse:
        checks = await container.readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # -- runs ----------------------------------------------------------------------------------
    @app.post(
        "/v1/runs",
        tags=["runs"],
        response_model=RunResult,
        summary="Run the agent now",
        responses={**_ERRORS, 409: {"model": Problem}, 200: {"content": {"text/event-stream": {}}}},
    )
    async def create_run(body: RunRequest, service: Service, _: Auth, stream: bool = False) -> Any:
        run = RunInput(message=body.message, session_id=body.session_id, metadata=body.metadata)
        if body.stream or stream:
            return StreamingResponse(
                _sse(service, run),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        chunks: list[Chunk] = [c async for c in service.run_stream(run)]
        last = next((c for c in reversed(chunks) if c.type in ("result", "error")), None)
        status = final_status(last)
        task_id = chunks[0].task_id if chunks and chunks[0].task_id else ""
        session_id = run.session_id or ""
        if task_id:
            stored = await service.get_task(task_id)
            session_id = stored.session_id if stored else session_id
        return RunResult(
            task_id=task_id,
            session_id=session_id,
            status=status,
            result=last.content if last is not None and last.type == "result" else None,
            error=(last.content or {}).get("message") if last is not None and last.type == "error" else None,
            chunks=[ChunkOut(**c.model_dump()) for c in chunks],
        )

    @app.post(
        "/webhook",
        tags=["runs"],
        status_code=202,
        response_model=TaskAccepted,
        summary="Accept a task; the result is called back",
        responses={**_ERRORS, 409: {"model": Problem}, 422: {"model": Problem}},
    )
    async def webhook(
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Response:
        raw = await request.body()
        secret = settings.secret("webhook_signing_secret")
        if secret:
            if not verify(secret.split(), request.headers, raw):
                raise HTTPException(401, "invalid or missing webhook-signature")
            request.app.state.limiter.enforce("webhook:signed")
        else:
            authed(request)
        try:
            body = WebhookRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise _validation(exc) from exc
        if body.callback_url:
            _check_callback_url(body.callback_url, settings.callback_allow_private)
        outcome = await container.service.submit(
            RunInput(message=body.message, session_id=body.session_id, metadata=body.metadata),
            callback_url=body.callback_url,
            idempotency_key=idempotency_key,
        )
        ACCEPTED.labels(str(outcome.created).lower()).inc()
        location = f"/v1/tasks/{outcome.task.id}"
        headers = {"Location": location}
        if not outcome.created:
            headers["Idempotent-Replayed"] = "true"
        # A Response is sent as is: the TaskAccepted shape (response_model, for the schema) without
        # FastAPI validating and serialising it again on the hot path.
        accepted = {"task_id": outcome.task.id, "session_id": outcome.task.session_id,
                    "status": RunStatus.pending.value, "location": location}
        return JSONResponse(accepted, 202, headers)

    @app.get(
        "/v1/tasks/{task_id}",
        tags=["runs"],
        response_model=TaskView,
        summary="Task status and result",
        responses={**_ERRORS, 404: {"model": Problem}},
    )
    async def get_task(task_id: str, service: Service, _: Auth) -> TaskView:
        task = await service.get_task(task_id)
        if task is None:
            raise HTTPException(404, f"task {task_id} not found")
        callback = await container.store.callback_status(task_id)
        return TaskView(
            task_id=task.id,
            session_id=task.session_id,
            status=task.status,
            result=task.result,
            error=task.error,
            steps=task.steps,
            metadata=task.metadata,
            callback=CallbackView(
                status=callback["status"], attempts=callback["attempts"], last_error=callback["last_error"]
            )
            if callback
            else None,
        )

    # -- websocket -----------------------------------------------------------------------------
    @app.websocket("/agent/{session_id}")
    async def agent_socket(websocket: WebSocket, session_id: str, last_event_id: str | None = None) -> None:
        """Send ``{"message": "..."}``; receive chunks ``{"id", "type", "content", "task_id"}``.
        Reconnect with ``?last_event_id=<id>`` to resume after the last chunk you saw."""
        try:
            principal = principal_of(websocket)
        except HTTPException as exc:
            denial = JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(denial)
            else:
                await websocket.close(code=4000 + exc.status_code, reason=str(exc.detail))
            return
        await websocket.accept()
        state = container.state
        after = last_event_id or await state.cursor(session_id)
        sender = asyncio.create_task(_forward(websocket, state.subscribe(session_id, after)))
        limiter: RateLimiter = websocket.app.state.limiter
        try:
            while True:
                raw = await websocket.receive_text()
                try:
                    data = json.loads(raw)
                    run = RunInput(
                        message=data.get("message", ""),
                        session_id=session_id,
                        metadata=data.get("metadata") or {},
                    )
                except (ValueError, AttributeError, ValidationError) as exc:
                    await websocket.send_json({"type": "error", "content": {"code": "invalid", "message": str(exc)}})
                    continue
                wait = limiter.hit(principal.key_id if not principal.anonymous else _client(websocket))
                if wait is not None:
                    await websocket.send_json(
                        {"type": "error", "content": {"code": "rate_limited", "retry_after": wait}}
                    )
                    continue
                try:
                    outcome = await container.service.submit(run, policy=data.get("policy"))
                except SessionBusy as exc:
                    await websocket.send_json({"type": "error", "content": {"code": "busy", "message": str(exc)}})
                    continue
                except BackendUnavailable as exc:
                    await websocket.send_json(
                        {"type": "error", "content": {"code": "unavailable", "message": str(exc)}}
                    )
                    continue
                await websocket.send_json({"type": "accepted", "content": {"task_id": outcome.task.id}})
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender

    return app


async def _forward(websocket: WebSocket, events: AsyncIterator[Chunk]) -> None:
    async for chunk in events:
        if chunk.type == "heartbeat":
            await websocket.send_json({"type": "heartbeat", "content": None})
            continue
        await websocket.send_json(chunk.model_dump())


async def _sse(service: AgentService, run: RunInput) -> AsyncIterator[bytes]:
    try:
        async for chunk in service.run_stream(run):
            data = json.dumps(chunk.model_dump(), default=str)
            yield f"id: {chunk.id}\nevent: {chunk.type}\ndata: {data}\n\n".encode()
    except SessionBusy as exc:
        data = json.dumps({"type": "error", "content": {"code": "busy", "message": str(exc)}})
        yield f"event: error\ndata: {data}\n\n".encode()


def _client(request: Request | WebSocket) -> str:
    return f"ip:{request.client.host if request.client else 'unknown'}"


def _validation(exc: ValidationError) -> HTTPException:
    errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return HTTPException(422, errors)


def _check_callback_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise HTTPException(
            422,
            [{"loc": ["body", "callback_url"], "msg": "callback_url must be https", "type": "value_error"}],
        )
    if not parts.hostname:
        raise HTTPException(
            422, [{"loc": ["body", "callback_url"], "msg": "callback_url has no host", "type": "value_error"}]
        )


def app_factory() -> FastAPI:
    """``uvicorn --factory agent_app.api.app:app_factory`` (the container image's API command)."""
    return create_app()
