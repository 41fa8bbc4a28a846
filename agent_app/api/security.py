"""Authentication (API key -> principal with scopes), rate limits, failed-auth throttling and the
request-size limit: hooks around the routes.

``AGENT_API_KEYS`` takes two forms (:func:`parse_api_keys`):

* a comma-separated list ``k1,k2``: every key is the one ``default`` principal with every scope
  (single tenant: what the infrastructure components have always set);
* a JSON list ``[{"key": "k1", "principal": "alice", "scopes": ["runs"]}, ...]``: each key its
  principal and scopes (``runs``: submit runs and read one's own tasks and sessions; ``operator``:
  ``/metrics`` and the dead-letter endpoints). Several keys may name one principal (rotation).

Rate limits count through the ``limits`` library in a shared store (Redis when the deployment has
one), so N API instances allow the limit once, not N times.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request, WebSocket
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.models import DEFAULT_PRINCIPAL
from ..core.ports import BackendUnavailable
from ..metrics import AUTH_FAILURES, RATE_LIMITED

SCOPES = frozenset({"runs", "operator"})
_PRINCIPAL_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    id: str
    scopes: frozenset[str] = SCOPES
    key_id: str = "anonymous"
    """First 12 hex digits of the key's SHA-256: names the key in logs and rate-limit counters."""
    anonymous: bool = False

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise HTTPException(403, f"this API key lacks the {scope!r} scope")


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_api_keys(raw: str | None) -> dict[str, Principal]:
    """SHA-256 of each key -> its principal. Raises ValueError naming ``AGENT_API_KEYS`` and the entry."""
    raw = (raw or "").strip()
    if not raw:
        return {}
    out: dict[str, Principal] = {}
    if not raw.startswith("["):
        for key in (k.strip() for k in raw.split(",")):
            if key:
                out[hashlib.sha256(key.encode()).hexdigest()] = Principal(DEFAULT_PRINCIPAL, SCOPES, key_id(key))
        return out
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"AGENT_API_KEYS: not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(entries, list):
        raise ValueError("AGENT_API_KEYS: JSON form must be a list of {key, principal, scopes}")
    for i, entry in enumerate(entries):
        where = f"AGENT_API_KEYS[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"key", "principal", "scopes"}:
            raise ValueError(f"{where}: must be an object with key, principal and optional scopes")
        token: Any = entry.get("key")
        entry_id: Any = entry.get("principal")
        scopes: Any = entry.get("scopes", ["runs"])
        if not isinstance(token, str) or len(token) < 8:
            raise ValueError(f"{where}.key: must be a string of at least 8 characters")
        if not isinstance(entry_id, str) or not _PRINCIPAL_ID.match(entry_id):
            raise ValueError(f"{where}.principal: must match [A-Za-z0-9._-]{{1,64}}")
        if not isinstance(scopes, list) or not set(scopes) <= SCOPES or not all(isinstance(s, str) for s in scopes):
            raise ValueError(f"{where}.scopes: must be a list of {sorted(SCOPES)}")
        out[hashlib.sha256(token.encode()).hexdigest()] = Principal(entry_id, frozenset(scopes), key_id(token))
    return out


def token_of(headers: Any, query: Any = None) -> str | None:
    """The credential: ``X-API-Key``, else ``Authorization: Bearer``, else (WebSocket only: browsers
    cannot set headers there) the ``api_key`` query parameter."""
    token = headers.get("x-api-key")
    auth = headers.get("authorization") or ""
    if not token and auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    if not token and query is not None:
        token = query.get("api_key")
    return token or None


@dataclass
class Authenticator:
    """API keys or bearer tokens -> :class:`Principal`. Missing credentials -> 401, unknown key -> 403.
    With no keys configured and ``allow_anonymous`` (loopback dev only) every request passes as the
    default principal with every scope. Accepts a plain key set too (the Lambda handler's use)."""

    keys: dict[str, Principal] | frozenset[str]
    allow_anonymous: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.keys, dict):
            self.keys = parse_api_keys(",".join(self.keys))

    def check(self, headers: Any, query: Any = None) -> Principal:
        token = token_of(headers, query)
        if not self.keys:
            if self.allow_anonymous:
                return Principal(DEFAULT_PRINCIPAL, SCOPES, "anonymous", anonymous=True)
            raise HTTPException(401, "no API keys configured on the server", {"WWW-Authenticate": "Bearer"})
        if not token:
            raise HTTPException(
                401, "missing API key: send X-API-Key or Authorization: Bearer", {"WWW-Authenticate": "Bearer"}
            )
        assert isinstance(self.keys, dict)
        principal = self.keys.get(hashlib.sha256(token.encode()).hexdigest())
        if principal is None:
            raise HTTPException(403, "API key not recognised")
        return principal


def limiter_storage_uri(redis_url: str | None) -> str:
    """``limits`` storage: the deployment's Redis when it has one (shared by all API instances)."""
    if not redis_url:
        return "memory://"
    scheme, _, rest = redis_url.partition("://")
    return f"async+{scheme}://{rest}"


@dataclass
class _Lease:
    tokens: int = 0
    expires: float = 0.0
    second: int = 0
    this_second: int = 0
    last_second: int = 0


@dataclass
class RateLimiter:
    """Fixed one-minute windows per key through ``limits``: ``per_minute`` requests a minute per API
    key (or per source address when anonymous), counted in ``storage`` (Redis: shared by every API
    instance). A store that does not answer in ``timeout`` -> 503.

    A busy key takes its hits from the store in leases: an instance that saw ``n`` requests of a
    key in the last second counts ``min(n, per_minute // 20, 50)`` at once and spends them locally
    for up to a second, so the accept path does not pay a store round trip per request when it is
    hot. A key seen once a second or less is counted one by one (exact). Leases are counted before
    they are spent, so instances never allow more than the limit within a window, except for the
    unspent part of a lease carried across a window's end (at most 5% of the limit per instance);
    the end of a window can leave up to one lease unspent (fewer requests than the limit)."""

    per_minute: int
    storage: Storage = field(default_factory=MemoryStorage)
    timeout: float = 1.5
    lease_seconds: float = 1.0
    _leases: dict[str, _Lease] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._limiter = FixedWindowRateLimiter(self.storage)
        self._item = RateLimitItemPerMinute(max(1, self.per_minute))
        self._max_lease = max(1, min(50, self.per_minute // 20))

    @classmethod
    def from_uri(cls, per_minute: int, uri: str, **options: Any) -> RateLimiter:
        if uri.startswith("memory") or per_minute <= 0:
            return cls(per_minute)
        storage = RedisStorage(uri, implementation="redispy", wrap_exceptions=True, socket_connect_timeout=1, **options)
        return cls(per_minute, storage)

    def _lease_of(self, key: str, now: float) -> _Lease:
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) > 100_000:
                self._leases.clear()
            lease = self._leases[key] = _Lease()
        second = int(now)
        if second != lease.second:
            lease.last_second = lease.this_second if second == lease.second + 1 else 0
            lease.second, lease.this_second = second, 0
        lease.this_second += 1
        return lease

    async def hit(self, key: str) -> float | None:
        """None if allowed, else seconds until the window resets."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic()
        lease = self._lease_of(key, now)
        if lease.tokens > 0 and lease.expires > now:
            lease.tokens -= 1
            return None
        size = max(1, min(self._max_lease, lease.last_second))
        try:
            async with asyncio.timeout(self.timeout):
                if await self._limiter.hit(self._item, "rl", key, cost=size):
                    lease.tokens, lease.expires = size - 1, now + self.lease_seconds
                    return None
                reset, _remaining = await self._limiter.get_window_stats(self._item, "rl", key)
        except Exception as exc:  # the store's errors, wrapped by limits, or our timeout
            raise BackendUnavailable(f"rate-limit store: {type(exc).__name__}: {exc}") from exc
        lease.tokens = 0
        RATE_LIMITED.inc()
        return max(0.0, reset - time.time())

    async def close(self) -> None:
        """Close the store's Redis client, if any (``limits`` keeps it on ``bridge.storage``)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    async def enforce(self, key: str) -> None:
        wait = await self.hit(key)
        if wait is not None:
            raise HTTPException(429, "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})


@dataclass
class FailureThrottle:
    """Failed authentication per source address: after ``per_minute`` failures in a minute (counted
    in the shared store) the source gets 429 for every request that needs a key until the window
    ends, valid key or not, so guessing is slow. A blocked source is remembered locally, so
    requests from good sources cost no extra round trip."""

    limiter: RateLimiter
    _blocked: dict[str, float] = field(default_factory=dict)

    def check(self, source: str) -> None:
        until = self._blocked.get(source)
        if until is None:
            return
        wait = until - time.monotonic()
        if wait <= 0:
            self._blocked.pop(source, None)
            return
        raise HTTPException(429, "too many failed authentication attempts", {"Retry-After": str(math.ceil(wait))})

    async def failed(self, source: str, exc: HTTPException) -> HTTPException:
        """Count a failure; the exception to raise (429 once over the limit)."""
        AUTH_FAILURES.inc()
        try:
            wait = await self.limiter.hit(f"authfail:{source}")
        except BackendUnavailable:
            wait = None  # the store is down: the 401/403 stands
        if wait is None:
            return exc
        if len(self._blocked) > 10_000:
            self._blocked.clear()
        self._blocked[source] = time.monotonic() + max(1.0, wait)
        return HTTPException(429, "too many failed authentication attempts", {"Retry-After": str(max(1, math.ceil(wait)))})


def source_of(request: Request | WebSocket) -> str:
    return f"ip:{request.client.host if request.client else 'unknown'}"


async def principal_of(request: Request | WebSocket) -> Principal:
    """Authenticate (query-string keys for WebSocket only), throttling failures per source."""
    auth: Authenticator = request.app.state.auth
    throttle: FailureThrottle = request.app.state.auth_throttle
    source = source_of(request)
    throttle.check(source)
    query = {"api_key": request.scope.get("agent.query_key")} if request.scope["type"] == "websocket" else None
    try:
        return auth.check(request.headers, query)
    except HTTPException as exc:
        raise await throttle.failed(source, exc) from None


_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:api_key|token|access_token)=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask credential query parameters (``api_key=...``) in a path or log line."""
    return _SECRET_QUERY.sub(r"\1[redacted]", text)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_redaction() -> None:
    """Redact credential query parameters in every line uvicorn logs (access and error), and in
    the root handlers (our own loggers), whatever reaches them. Idempotent."""
    targets: list[logging.Logger | logging.Handler] = [
        logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "websockets")
    ]
    targets += logging.getLogger().handlers
    for target in targets:
        if not any(isinstance(f, _RedactFilter) for f in target.filters):
            target.addFilter(_RedactFilter())


class RedactQueryKeys:
    """Strip ``api_key`` from the query string before anything logs it: the key moves to
    ``scope["agent.query_key"]`` (read by the WebSocket route), and uvicorn's access log, which
    prints the same scope, sees ``api_key=[redacted]``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        qs: bytes = scope.get("query_string", b"")
        if scope["type"] in ("http", "websocket") and b"api_key=" in qs.lower():
            from urllib.parse import parse_qsl

            pairs = parse_qsl(qs.decode("latin-1"), keep_blank_values=True)
            key = next((v for k, v in pairs if k.lower() == "api_key"), None)
            if key is not None and scope["type"] == "websocket":
                scope["agent.query_key"] = key
            scope["query_string"] = redact(qs.decode("latin-1")).encode("latin-1")
        await self.app(scope, receive, send)


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
