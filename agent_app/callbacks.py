"""Callbacks in the Standard Webhooks format (https://www.standardwebhooks.com/).

Headers: ``webhook-id`` (``msg_<task id>``, stable across retries so receivers can dedupe),
``webhook-timestamp`` (unix seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``, one per configured secret, space-separated, so a receiver can
rotate its secret without a gap. A secret may be given as ``whsec_<base64>`` or as raw text.

Delivery runs from the outbox in the task store: full-jitter exponential backoff (1 s doubling to
1 h) for ``max_age_seconds`` (default 36 h, at least 24 h), ``Retry-After`` honoured, a ``410 Gone``
stops at once, and every attempt goes through the SSRF guard (:mod:`agent_infra.agent_app.core.netguard`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

from .core.netguard import BlockedDestination, NetPolicy, guarded_request
from .metrics import CALLBACKS

log = logging.getLogger("agent_app.callbacks")

BASE_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 3_600.0
TOLERANCE_SECONDS = 300
"""The reference verifier's timestamp tolerance (either side of now); webhook-ids are kept far longer."""


def secret_bytes(secret: str) -> bytes:
    """``whsec_<base64>`` (the Standard Webhooks form) or, for convenience, raw text."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one ``v1,<sig>`` per secret, by the reference ``standardwebhooks``."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(secret_bytes(s)).sign(msg_id, when, body.decode()) for s in secrets)


def verify(secrets: list[str], headers: Any, body: bytes) -> bool:
    """Check Standard Webhooks headers against any of ``secrets`` (rotation) with the reference
    ``standardwebhooks`` verifier (5-minute timestamp tolerance, constant-time compare). A
    malformed header or a body that is not UTF-8 is a failed check, not an error."""
    wanted = {k: headers.get(k) or "" for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    for secret in secrets:
        try:
            Webhook(secret_bytes(secret)).verify(body, wanted, json_parse=False)
            return True
        except (WebhookVerificationError, ValueError, UnicodeDecodeError, binascii.Error):
            continue
    return False


def backoff(attempt: int) -> float:
    return random.uniform(0, min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2**attempt))


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def receiver_of(url: str) -> str:
    """The unit of the per-receiver limit: scheme, host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class CallbackSender:
    """Delivers due outbox rows concurrently: at most ``per_receiver`` attempts in flight to one
    receiver (scheme, host, port) and ``max_inflight`` in all, so a slow or dead receiver holds
    only its own slots. A due row whose receiver is saturated is pushed back ``defer_seconds``
    (no attempt counted), so the rows behind it, for other receivers, are not starved."""

    def __init__(
        self,
        store: Any,
        secrets: list[str],
        policy: NetPolicy,
        *,
        max_age_seconds: float = 129_600,
        per_receiver: int = 4,
        max_inflight: int = 64,
        defer_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.policy = policy
        self.max_age_seconds = max_age_seconds
        self.per_receiver = per_receiver
        self.max_inflight = max_inflight
        self.defer_seconds = defer_seconds
        self._busy: dict[str, int] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def deliver_due(self, limit: int = 50, *, wait: bool = True) -> int:
        """Start an attempt for every due callback that has a free slot; returns how many started.
        ``wait``: return once they finished (serverless); else they run on in the background."""
        now = time.time()
        started: list[asyncio.Task[None]] = []
        for row in await self.store.due_callbacks(now, limit):
            if len(self._running) >= self.max_inflight:
                break
            receiver = receiver_of(row["url"])
            if self._busy.get(receiver, 0) >= self.per_receiver:
                await self.store.claim_callback(row["id"], now + self.defer_seconds, row["next_at"])
                continue
            if not await self.store.claim_callback(row["id"], now + 60, row["next_at"]):
                continue
            self._busy[receiver] = self._busy.get(receiver, 0) + 1
            task = asyncio.create_task(self._attempt_in_slot(receiver, row))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            started.append(task)
        if wait and started:
            await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def _attempt_in_slot(self, receiver: str, row: dict[str, Any]) -> None:
        try:
            await self.attempt(row)
        except Exception as exc:  # the row's lease lapses and it is attempted again
            log.warning("callback %s: %s", row["id"], exc)
        finally:
            left = self._busy.get(receiver, 1) - 1
            if left <= 0:
                self._busy.pop(receiver, None)
            else:
                self._busy[receiver] = left

    @property
    def inflight(self) -> int:
        return len(self._running)

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Let running attempts finish for ``grace_seconds``, then cancel them (their rows stay
        leased and are attempted again after the lease)."""
        if not self._running:
            return
        _done, pending = await asyncio.wait(set(self._running), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def attempt(self, row: dict[str, Any]) -> None:
        body = json.dumps(row["payload"], separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": row["id"],
            "webhook-timestamp": str(ts),
            "user-agent": "agent-app-callbacks/1",
        }
        if self.secrets:
            headers["webhook-signature"] = sign(self.secrets, row["id"], ts, body)
        attempts = int(row["attempts"]) + 1
        expired = time.time() - float(row["created_at"]) > self.max_age_seconds
        try:
            response = await guarded_request("POST", row["url"], self.policy, headers=headers, content=body)
        except BlockedDestination as exc:
            log.warning("callback %s refused: %s", row["id"], exc)
            CALLBACKS.labels("refused").inc()
            await self.store.callback_attempted(
                row["id"], delivered=False, give_up=True, next_at=None, last_error=f"refused: {exc}"
            )
            return
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            CALLBACKS.labels("retry").inc()
            await self.store.callback_attempted(
                row["id"],
                delivered=False,
                give_up=expired,
                next_at=time.time() + backoff(attempts),
                last_error=repr(exc),
            )
            return
        code = response.status_code
        if 200 <= code < 300:
            CALLBACKS.labels("delivered").inc()
            await self.store.callback_attempted(row["id"], delivered=True, give_up=False, next_at=None, last_error=None)
            return
        if code == 410:
            CALLBACKS.labels("gone").inc()
            await self.store.callback_attempted(
                row["id"],
                delivered=False,
                give_up=True,
                next_at=None,
                last_error="410 Gone: receiver unsubscribed",
            )
            return
        delay = retry_after_seconds(response.headers.get("retry-after")) if code in (429, 503) else None
        CALLBACKS.labels("retry").inc()
        await self.store.callback_attempted(
            row["id"],
            delivered=False,
            give_up=expired,
            next_at=time.time() + (delay if delay is not None else backoff(attempts)),
            last_error=f"HTTP {code}",
        )
