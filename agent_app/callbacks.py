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

import base64
import hashlib
import hmac
import json
import logging
import random
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .core.netguard import BlockedDestination, NetPolicy, guarded_request
from .metrics import CALLBACKS

log = logging.getLogger("agent_app.callbacks")

BASE_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 3_600.0
TOLERANCE_SECONDS = 300


def secret_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_bytes(s), signed, hashlib.sha256).digest()).decode() for s in secrets
    )


def verify(secrets: list[str], headers: Any, body: bytes, *, now: float | None = None) -> bool:
    """Check Standard Webhooks headers against any of ``secrets`` (rotation), with a 5-minute window."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now or time.time()) - ts) > TOLERANCE_SECONDS:
        return False
    offered = {part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")}
    for secret in secrets:
        expected = sign([secret], msg_id, ts, body).split(",", 1)[1]
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return True
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


class CallbackSender:
    def __init__(self, store: Any, secrets: list[str], policy: NetPolicy, *, max_age_seconds: float = 129_600) -> None:
        self.store = store
        self.secrets = secrets
        self.policy = policy
        self.max_age_seconds = max_age_seconds

    async def deliver_due(self, limit: int = 20) -> int:
        """Attempt every due callback once; returns how many were attempted."""
        now = time.time()
        count = 0
        for row in await self.store.due_callbacks(now, limit):
            if not await self.store.claim_callback(row["id"], now + 60, row["next_at"]):
                continue
            count += 1
            await self.attempt(row)
        return count

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
