"""Authenticating the agent WebSocket, including browsers that cannot send headers.

Headers (``X-API-Key``, ``Authorization: Bearer``) and ``?api_key=`` are checked before the
handshake completes, as for HTTP. When the server needs a key and the client sent none, the
socket is accepted and the first frame must be ``{"type": "auth", "api_key": "..."}``: that is how
the web UI authenticates without putting the key in a URL (where proxies and logs keep it).
Every path ends in the same :class:`Authenticator`, so per-key scoping applies to all of them.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import HTTPException, WebSocket
from fastapi.responses import JSONResponse

from ..core.models import SESSION_ID_PATTERN
from .security import Authenticator, FailureThrottle, Principal, principal_of, source_of
from .ws_frames import AuthFrame, FrameError, parse_frame

AUTH_FRAME_TIMEOUT_SECONDS = 10.0


async def authenticate(websocket: WebSocket, session_id: str) -> Principal | None:
    """The caller's principal with the socket accepted, or None once the socket is refused/closed."""
    try:
        if not SESSION_ID_PATTERN.match(session_id):
            raise HTTPException(422, "session_id must be 1-128 of [A-Za-z0-9._:-]")
        principal = await principal_of(websocket)
        principal.require("runs")
    except HTTPException as exc:
        auth: Authenticator = websocket.app.state.auth
        if exc.status_code != 401 or not auth.keys:  # a wrong key is refused at the handshake
            await _deny(websocket, exc)
            return None
    else:
        await websocket.accept()
        return principal
    await websocket.accept()
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), AUTH_FRAME_TIMEOUT_SECONDS)
        frame = parse_frame(raw, session_id)
        if not isinstance(frame, AuthFrame):
            raise FrameError(
                'This server needs an API key: send {"type": "auth", "api_key": "..."} as the first frame '
                "(or the X-API-Key header)."
            )
        throttle: FailureThrottle = websocket.app.state.auth_throttle  # a key guessed frame by frame is throttled too
        source = source_of(websocket)
        throttle.check(source)
        try:
            principal = auth.check({"x-api-key": frame.api_key})
        except HTTPException as exc:
            raise await throttle.failed(source, exc) from None
        principal.require("runs")
        await websocket.send_text(json.dumps({"type": "authenticated", "content": None}))
        return principal
    except TimeoutError:
        await _close(websocket, 4401, "unauthorized", "No auth frame arrived within 10 seconds; the API key is needed.")
    except FrameError as exc:
        await _close(websocket, 4401, "unauthorized", str(exc))
    except HTTPException as exc:
        code = "forbidden" if exc.status_code == 403 else "unauthorized"
        await _close(websocket, 4000 + exc.status_code, code, f"{exc.detail}.".replace("..", "."))
    return None


async def answer_late_auth(websocket: WebSocket, frame: AuthFrame) -> None:
    """An auth frame on a socket already authenticated (by header, or no keys needed): the key is
    checked and the answer said, but the connection keeps the principal it was opened with."""
    auth: Authenticator = websocket.app.state.auth
    try:
        auth.check({"x-api-key": frame.api_key})
    except HTTPException as exc:
        message = f"{exc.detail}; this connection keeps its first credentials."
        await websocket.send_text(json.dumps({"type": "error", "content": {"code": "forbidden", "message": message}}))
        return
    await websocket.send_text(json.dumps({"type": "authenticated", "content": None}))


async def _deny(websocket: WebSocket, exc: HTTPException) -> None:
    denial = JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(denial)
    else:
        await websocket.close(code=4000 + exc.status_code, reason=str(exc.detail))


async def _close(websocket: WebSocket, close_code: int, code: str, message: str) -> None:
    """Say why in an error frame (a browser cannot read a refused handshake), then close."""
    try:
        await websocket.send_text(json.dumps({"type": "error", "content": {"code": code, "message": message}}))
        await websocket.close(code=close_code, reason=message[:120])
    except Exception:  # the client already went away
        return
