"""Authentication, per-key rate limits and the request-size limit: hooks around the routes."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request, WebSocket
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import RATE_LIMITED


@dataclass
class Principal:
    key_id: str
    anonymous: bool = False


@dataclass
class Authenticator:
    """API keys or bearer tokens (``X-API-Key: k`` or ``Authorization: Bearer k``).

    Missing credentials -> 401, unknown key -> 403. With no keys configured and
    ``allow_anonymous`` (loopback dev only) every request passes as ``anonymous``.
    """

    keys: frozenset[str]
    allow_anonymous: bool = False

    def check(self, headers: Any, query: Any = None) -> Principal:
        token = headers.get("x-api-key")
        auth = headers.get("authorization") or ""
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token and query is not None:
            token = query.get("api_key")
        if not self.keys:
            if self.allow_anonymous:
                return Principal("anonymous", anonymous=True)
            raise HTTPException(401, "no API keys configured on the server", {"WWW-Authenticate": "Bearer"})
        if not token:
            raise HTTPException(
                401,
                "missing API key: send X-API-Key or Authorization: Bearer",
                {"WWW-Authenticate": "Bearer"},
            )
        for key in self.keys:
            if hmac.compare_digest(key.encode(), token.encode()):
                return Principal(hashlib.sha256(key.encode()).hexdigest()[:12])
        raise HTTPException(403, "API key not recognised")


@dataclass
class RateLimiter:
    """Token bucket per key: ``per_minute`` requests a minute, bursts up to ``per_minute``.

    Per API instance; behind N instances the effective limit is N times this (document it in the
    gateway, which should carry the global limit)."""

    per_minute: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def hit(self, key: str) -> float | None:
        """None if allowed, else seconds until a request would be allowed."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic()
        rate = self.per_minute / 60.0
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            RATE_LIMITED.inc()
            return (1.0 - tokens) / rate
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self._buckets.clear()
        return None

    def enforce(self, key: str) -> None:
        wait = self.hit(key)
        if wait is not None:
            raise HTTPException(429, "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})


def principal_of(request: Request | WebSocket) -> Principal:
    auth: Authenticator = request.app.state.auth
    return auth.check(request.headers, request.query_params)


class BodySizeLimit:
    """413 for bodies over ``max_bytes``, by Content-Length or while streaming (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await _reject(send, self.max_bytes)
                    return
        if any(name == b"content-length" for name, _ in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit before the app sees anything.
        chunks: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await _reject(send, self.max_bytes)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if chunks:
                return chunks.pop(0)
            return await receive()

        await self.app(scope, replay, send)


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
