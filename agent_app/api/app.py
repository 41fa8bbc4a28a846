"""The FastAPI transport: translate HTTP/WebSocket to one service call and back. No logic here."""

import asyncio
import contextlib
import gc
import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response, Security, WebSocket, WebSocketDisconnect
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from .. import __version__
from ..adapters.redis_tls import tls_options
from ..callbacks import verify
from ..core.models import Chunk, RunInput, RunStatus, Task, scoped
from ..core.ports import BackendUnavailable
from ..core.service import AgentService, IdempotencyConflict, SessionBusy
from ..core.session import final_status
from ..metrics import ACCEPTED, WEBHOOK_REPLAYS
from ..wiring import Container, build
from .agent_protocol import install_agent_protocol
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
from .security import (
    Authenticator,
    BodySizeLimit,
    FailureThrottle,
    Principal,
    RateLimiter,
    RedactQueryKeys,
    install_log_redaction,
    limiter_storage_uri,
    parse_api_keys,
    principal_of,
    source_of,
)
from .web_ui import mount_web_ui
from .ws_auth import answer_late_auth
from .ws_auth import authenticate as authenticate_socket
from .ws_frames import AuthFrame, FrameError, parse_frame

log = logging.getLogger("agent_app.api")

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing credentials"},
    403: {"model": Problem, "description": "Unknown API key, or one without the scope this needs"},
    429: {"model": Problem, "description": "Rate limited, or too many failed authentications; see Retry-After"},
    503: {"model": Problem, "description": "A backing service is unavailable; nothing was recorded, retry"},
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH_ERRORS,
    400: {"model": Problem, "description": "Body bytes that cannot be parsed (not UTF-8 JSON)"},
    413: {"model": Problem, "description": "Body too large"},
    422: {"model": Problem, "description": "Invalid body or parameters; detail[].loc names the field"},
}
_POLICIES = (None, "enqueue", "reject", "interrupt")

# Declared so the OpenAPI document names the credentials; the check itself is principal_of.
_API_KEY = APIKeyHeader(name="X-API-Key", scheme_name="ApiKey", auto_error=False)
_BEARER = HTTPBearer(scheme_name="Bearer", auto_error=False)
_SIGNATURE_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "webhook-signature",
    "description": "With AGENT_WEBHOOK_SIGNING_SECRET set, /webhook takes Standard Webhooks headers "
    "(webhook-id, webhook-timestamp, webhook-signature) instead of an API key.",
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
    try:
        keys = parse_api_keys(settings.secret("api_keys"))
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
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
            await app.state.limiter.close()
            await app.state.auth_throttle.limiter.close()
            await container.close()

    app = FastAPI(
        title="agent-app",
        version=__version__,
        lifespan=lifespan,
        description="Agent service: sync and streamed runs, webhooks with callbacks, WebSocket sessions.",
    )
    anonymous = not keys
    app.state.container = container
    app.state.auth = Authenticator(keys, allow_anonymous)
    storage_uri = limiter_storage_uri(settings.redis_url)
    redis_tls = tls_options(settings.redis_url, settings.redis_ca_cert) if settings.redis_url else {}
    app.state.limiter = RateLimiter.from_uri(settings.rate_limit_per_minute, storage_uri, **redis_tls)
    app.state.auth_throttle = FailureThrottle(
        RateLimiter.from_uri(settings.auth_failures_per_minute, storage_uri, **redis_tls)
    )
    app.state.worker = None
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RedactQueryKeys)  # outermost: nothing downstream (or in the access log) sees a key
    install_log_redaction()

    async def service_dep() -> AgentService:  # async: a sync dependency costs a thread-pool hop per request
        return container.service

    async def authenticate(request: Request, scope: str) -> Principal:
        principal = await principal_of(request)
        principal.require(scope)
        limiter: RateLimiter = request.app.state.limiter
        await limiter.enforce(principal.key_id if not principal.anonymous else source_of(request))
        return principal

    async def authed(
        request: Request,
        _key: Annotated[str | None, Security(_API_KEY)],
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    ) -> Principal:
        return await authenticate(request, "runs")

    async def operator(
        request: Request,
        _key: Annotated[str | None, Security(_API_KEY)],
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    ) -> Principal:
        return await authenticate(request, "operator")

    Service = Annotated[AgentService, Depends(service_dep)]
    Auth = Annotated[Principal, Depends(authed)]
    Operator = Annotated[Principal, Depends(operator)]

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

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (operator scope)",
        response_class=Response,
        responses={**_AUTH_ERRORS, 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics(_: Operator) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # -- dead letters (operator scope; a principal sees only its own tasks) -------------------------
    @app.get(
        "/v1/dlq",
        tags=["operator"],
        response_model=list[TaskView],
        summary="Dead-lettered tasks of the caller's principal (operator scope)",
        responses=_AUTH_ERRORS,
    )
    async def dlq_list(principal: Operator) -> list[TaskView]:
        letters = await container.queue.dead_letters(1_000)
        return [_view(t) for t in letters if t.principal == principal.id][:100]

    @app.post(
        "/v1/dlq/{task_id}/replay",
        tags=["operator"],
        status_code=202,
        response_model=TaskAccepted,
        summary="Queue a dead-lettered task again (operator scope)",
        responses={**_AUTH_ERRORS, 404: {"model": Problem}},
    )
    async def dlq_replay(task_id: str, principal: Operator) -> TaskAccepted:
        letters = await container.queue.dead_letters(1_000)
        task = next((t for t in letters if t.id == task_id and t.principal == principal.id), None)
        if task is None or not await container.queue.replay(task_id):
            raise HTTPException(404, f"no dead-lettered task {task_id}")
        location = f"/v1/tasks/{task.id}"
        return TaskAccepted(task_id=task.id, session_id=task.session_id, status=RunStatus.pending, location=location)

    # -- runs ----------------------------------------------------------------------------------
    @app.post(
        "/v1/runs",
        tags=["runs"],
        response_model=RunResult,
        summary="Run the agent now",
        responses={**_ERRORS, 409: {"model": Problem}, 200: {"content": {"text/event-stream": {}}}},
    )
    async def create_run(body: RunRequest, service: Service, principal: Auth, stream: bool = False) -> Any:
        run = RunInput(message=body.message, session_id=body.session_id, metadata=body.metadata)
        if body.stream or stream:
            return StreamingResponse(
                _sse(service, run, principal.id),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        chunks: list[Chunk] = [c async for c in service.run_stream(run, principal=principal.id)]
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
        responses={**_ERRORS, 409: {"model": Problem}},
        # the body is read raw (the signature covers its bytes), so declare it here for clients and fuzzers
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": WebhookRequest.model_json_schema()}},
            },
            "security": [{"ApiKey": []}, {"Bearer": []}, {"StandardWebhooks": []}],
        },
    )
    async def webhook(
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Response:
        """Accept a task: 202 only once it is durably recorded (it will run); 503 only when it is
        not (it never will). Repeats are answered from the first: the same ``Idempotency-Key``
        (API-key callers) or, for signed webhooks, the same ``webhook-id``, which the signature
        covers (an unsigned ``Idempotency-Key`` would let a replay through by changing it)."""
        raw = await request.body()
        secret = settings.secret("webhook_signing_secret")
        if secret:
            throttle: FailureThrottle = request.app.state.auth_throttle
            throttle.check(source_of(request))
            if not verify(secret.split(), request.headers, raw):
                raise await throttle.failed(
                    source_of(request), HTTPException(401, "invalid or missing webhook-signature")
                )
            await request.app.state.limiter.enforce("webhook:signed")
            principal_id = settings.webhook_principal
            dedupe_key: str | None = f"webhook-id:{request.headers['webhook-id']}"
        else:
            principal_id = (await authenticate(request, "runs")).id
            dedupe_key = idempotency_key
        try:
            body = WebhookRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise _validation(exc) from exc
        if body.callback_url:
            _check_callback_url(body.callback_url, settings.callback_allow_private)
        outcome = await container.service.submit(
            RunInput(message=body.message, session_id=body.session_id, metadata=body.metadata),
            callback_url=body.callback_url,
            idempotency_key=dedupe_key,
            principal=principal_id,
        )
        ACCEPTED.labels(str(outcome.created).lower()).inc()
        if secret and not outcome.created:
            WEBHOOK_REPLAYS.inc()
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
    async def get_task(task_id: str, service: Service, principal: Auth) -> TaskView:
        task = await service.get_task(task_id, principal.id)  # someone else's task is not found
        if task is None:
            raise HTTPException(404, f"task {task_id} not found")
        return _view(task, await container.store.callback_status(task_id))

    # -- websocket -----------------------------------------------------------------------------
    @app.websocket("/agent/{session_id}")
    async def agent_socket(websocket: WebSocket, session_id: str, last_event_id: str | None = None) -> None:
        """Send text (the message) or ``{"message": "..."}``; receive chunks ``{"id", "type", "content",
        "task_id"}``. Reconnect with ``?last_event_id=<id>`` to resume after the last chunk you saw.
        Browsers authenticate with a first frame ``{"type": "auth", "api_key": "..."}``."""
        principal = await authenticate_socket(websocket, session_id)
        if principal is None:
            return
        state = container.state
        stream_key = scoped(principal.id, session_id)  # the principal's own session of that name
        after = last_event_id or await state.cursor(stream_key)
        sender = asyncio.create_task(_forward(websocket, state.subscribe(stream_key, after)))
        limiter: RateLimiter = websocket.app.state.limiter
        try:
            while True:
                raw = await websocket.receive_text()
                try:
                    frame = parse_frame(raw, session_id)
                except FrameError as exc:
                    await websocket.send_json({"type": "error", "content": {"code": "invalid", "message": str(exc)}})
                    continue
                if isinstance(frame, AuthFrame):  # already authenticated (header, or no keys needed)
                    await answer_late_auth(websocket, frame)
                    continue
                run = frame.run
                try:
                    wait = await limiter.hit(principal.key_id if not principal.anonymous else source_of(websocket))
                except BackendUnavailable as exc:
                    await websocket.send_json(
                        {"type": "error", "content": {"code": "unavailable", "message": str(exc)}}
                    )
                    continue
                if wait is not None:
                    await websocket.send_json(
                        {
                            "type": "error",
                            "content": {
                                "code": "rate_limited",
                                "retry_after": wait,
                                "message": f"Too many messages: wait {max(1, math.ceil(wait))} s and send again.",
                            },
                        }
                    )
                    continue
                try:
                    outcome = await container.service.submit(run, policy=frame.policy, principal=principal.id)
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

    install_agent_protocol(app, container, authed, _check_callback_url)
    mount_web_ui(app)

    def openapi() -> dict[str, Any]:
        """The document, minus the security requirements when no keys are configured (anonymous
        loopback dev), so it never claims a credential the server does not check."""
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            if not anonymous:
                doc.setdefault("components", {}).setdefault("securitySchemes", {})["StandardWebhooks"] = _SIGNATURE_SCHEME
            else:
                doc.get("components", {}).pop("securitySchemes", None)
                for item in doc.get("paths", {}).values():
                    for operation in item.values():
                        operation.pop("security", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _view(task: Task, callback: dict[str, Any] | None = None) -> TaskView:
    return TaskView(
        task_id=task.id,
        session_id=task.session_id,
        status=task.status,
        result=task.result,
        error=task.error,
        steps=task.steps,
        metadata=task.metadata,
        callback=CallbackView(status=callback["status"], attempts=callback["attempts"], last_error=callback["last_error"])
        if callback
        else None,
    )


async def _forward(websocket: WebSocket, events: AsyncIterator[Chunk]) -> None:
    async for chunk in events:
        if chunk.type == "heartbeat":
            await websocket.send_json({"type": "heartbeat", "content": None})
            continue
        await websocket.send_json(chunk.model_dump())


async def _sse(service: AgentService, run: RunInput, principal: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in service.run_stream(run, principal=principal):
            data = json.dumps(chunk.model_dump(), default=str)
            yield f"id: {chunk.id}\nevent: {chunk.type}\ndata: {data}\n\n".encode()
    except SessionBusy as exc:
        data = json.dumps({"type": "error", "content": {"code": "busy", "message": str(exc)}})
        yield f"event: error\ndata: {data}\n\n".encode()


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
