"""Signed inbound webhooks are deduplicated by webhook-id (signed, so a replay cannot change it),
whatever Idempotency-Key the replayer adds; signing goes through the reference library."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from tests.app.conftest import RedisProcess
from tests.app.test_api import serve

SECRET = "whsec_" + base64.b64encode(b"inbound-secret-bytes-0123456789").decode()


def signed(body: bytes, msg_id: str, when: datetime | None = None) -> dict[str, str]:
    when = when or datetime.now(tz=UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, when, body.decode()),
    }


def test_replayed_signed_webhook_is_one_task(tmp_path: Path, redis_server: RedisProcess) -> None:
    with serve(tmp_path, redis_server, webhook_signing_secret=SECRET) as srv:
        body = json.dumps({"message": "6*7"}).encode()
        headers = signed(body, "msg_order_1")
        answers = [httpx.post(f"{srv.url}/webhook", headers=headers, content=body) for _ in range(3)]
        # a replayer cannot change webhook-id (signed) but can add any Idempotency-Key: still the same task
        answers += [
            httpx.post(f"{srv.url}/webhook", headers=headers | {"Idempotency-Key": f"fresh-{i}"}, content=body)
            for i in range(2)
        ]
        assert [a.status_code for a in answers] == [202] * 5
        assert len({a.json()["task_id"] for a in answers}) == 1
        assert "idempotent-replayed" not in answers[0].headers
        assert all(a.headers["idempotent-replayed"] == "true" for a in answers[1:])
        # a new message id is a new task
        other = httpx.post(f"{srv.url}/webhook", headers=signed(body, "msg_order_2"), content=body)
        assert other.status_code == 202 and other.json()["task_id"] != answers[0].json()["task_id"]
        # outside the reference verifier's 5-minute tolerance, or tampered: refused
        stale = signed(body, "msg_order_3", datetime.now(tz=UTC) - timedelta(minutes=6))
        assert httpx.post(f"{srv.url}/webhook", headers=stale, content=body).status_code == 401
        tampered = httpx.post(f"{srv.url}/webhook", headers=headers, content=body.replace(b"6", b"7"))
        assert tampered.status_code == 401
        garbage = headers | {"webhook-signature": "v1"}
        assert httpx.post(f"{srv.url}/webhook", headers=garbage, content=body).status_code == 401
