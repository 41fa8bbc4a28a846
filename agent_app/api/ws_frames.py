"""What a client may send on the agent WebSocket, read into a run or an auth request.

* A plain-text frame is the message itself (``what is 6*7``), as people type it in a terminal client.
* A frame starting with ``{`` is JSON: ``{"message": "...", "metadata": {...}, "policy": "reject"}``.
* ``{"type": "auth", "api_key": "..."}`` as the first frame authenticates a browser, which cannot set
  headers on a WebSocket and should not put a key in the URL.

Mistakes come back as one sentence naming the field, never a pydantic dump or URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import ValidationError

from ..core.models import RunInput
from ..core.service import SessionPolicy

_MESSAGE_FIELDS = ("type", "message", "metadata", "policy")
_POLICIES: tuple[str, ...] = get_args(SessionPolicy)


class FrameError(ValueError):
    """A frame the client got wrong; ``str()`` is the sentence to send back."""


@dataclass
class MessageFrame:
    run: RunInput
    policy: SessionPolicy | None


@dataclass
class AuthFrame:
    api_key: str


def parse_frame(raw: str, session_id: str) -> MessageFrame | AuthFrame:
    """Read one text frame. Raises :class:`FrameError` with a sentence for the client."""
    text = raw.strip()
    if not text:
        raise FrameError("The frame is empty: send the message as text, or JSON with a 'message' field.")
    if not text.startswith("{"):
        return MessageFrame(_run_input({"message": raw}, session_id), None)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FrameError(
            f"The frame starts with '{{' but is not valid JSON ({exc.msg} at character {exc.pos}); "
            "send plain text, or a JSON object with a 'message' field."
        ) from None
    if not isinstance(data, dict):  # ``{`` guarantees an object; kept for safety with odd decoders
        raise FrameError("A JSON frame must be an object with a 'message' field.")
    kind = data.get("type", "message")
    if kind == "auth":
        return _auth(data)
    if kind != "message":
        raise FrameError(f"The field 'type' is {kind!r}; it must be 'message' or 'auth'.")
    unknown = sorted(set(data) - set(_MESSAGE_FIELDS))
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise FrameError(f"Unknown field {names} in the frame; a message frame has 'message', 'metadata', 'policy'.")
    policy = data.get("policy")
    if policy is not None and policy not in _POLICIES:
        raise FrameError(f"The field 'policy' is {policy!r}; it must be one of {', '.join(_POLICIES)}.")
    fields = {k: v for k, v in data.items() if k in ("message", "metadata") and v is not None}
    return MessageFrame(_run_input(fields, session_id), policy)


def _auth(data: dict[str, Any]) -> AuthFrame:
    key = data.get("api_key")
    if not isinstance(key, str) or not key:
        raise FrameError("The auth frame needs an 'api_key' field holding the API key as a string.")
    return AuthFrame(key)


def _run_input(fields: dict[str, Any], session_id: str) -> RunInput:
    try:
        return RunInput(session_id=session_id, **fields)
    except ValidationError as exc:
        raise FrameError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """The first validation error as a sentence naming the field (pydantic's text without its URL)."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in error["loc"]) or "frame"
    kind = error["type"]
    if kind == "missing":
        return f"The field '{field}' is required."
    if kind == "string_too_short":
        return f"The field '{field}' must not be empty."
    if kind == "string_too_long":
        return f"The field '{field}' is too long: at most {error['ctx']['max_length']} characters."
    return f"The field '{field}' is invalid: {error['msg']}."
