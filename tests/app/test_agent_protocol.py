"""The Agent Protocol routes, checked by a client driven by the published OpenAPI document.

``specs/agent_protocol_openapi.json`` is langchain-ai/agent-protocol's ``openapi.json`` (0.1.6, commit
753182477108f0ae4e410ea6f3f2eaa3efd317a9; the runs and threads part). :class:`SpecClient` knows
nothing of our code: it finds each operation in that document, checks that the request it sends is
valid for the operation's ``requestBody`` schema and path parameters, then checks that the status we
answer is one the operation declares and that the body validates against the declared schema
(JSON Schema 2020-12 with format checks: uuid, date-time, uri). Real uvicorn, real httpx.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_infra.agent_app.api.app import create_app
from agent_infra.agent_app.settings import Settings
from agent_infra.agent_app.wiring import build
from jsonschema import Draft202012Validator

from tests.app.conftest import Receiver, RedisProcess, ServerThread

SPEC = json.loads((Path(__file__).parent / "specs" / "agent_protocol_openapi.json").read_text())
KEY, OTHER_KEY = "ap-key-1", "ap-key-2"
_OPEN: list[httpx.Client] = []  # closed when the server they talk to stops


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    # the spec's refs are "#/components/schemas/X": resolve them against the document's components
    return Draft202012Validator(
        {**schema, "components": SPEC["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def validate(schema: dict[str, Any], instance: Any, what: str) -> None:
    errors = sorted(_validator(schema).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{what} does not match the spec: " + "; ".join(
        f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:5]
    )


class SpecClient:
    """Calls operations by their path in the spec and holds every exchange to it."""

    def __init__(self, base: str, key: str = KEY) -> None:
        self.http = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60)
        _OPEN.append(self.http)

    def call(
        self,
        method: str,
        template: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        check_request: bool = True,
        **path: str,
    ) -> httpx.Response:
        operation = SPEC["paths"][template][method]
        for param in operation.get("parameters", []):
            if param["in"] == "path":
                validate(param["schema"], path[param["name"]], f"path parameter {param['name']}")
        if check_request and "requestBody" in operation:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            validate(schema, body, f"request to {method.upper()} {template}")
        response = self.http.request(method, template.format(**path), json=body, params=query)
        declared = operation["responses"]
        assert str(response.status_code) in declared, (
            f"{method.upper()} {template} answered {response.status_code}, which the spec does not declare: "
            f"{response.text[:300]}"
        )
        content = declared[str(response.status_code)].get("content", {})
        # the spec types the stateful stream endpoints application/json with an empty schema; they are SSE
        is_json = response.headers.get("content-type", "").startswith("application/json")
        if "application/json" in content and is_json:
            validate(content["application/json"]["schema"], response.json(), f"{response.status_code} response")
        elif "application/json" in content:
            assert content["application/json"]["schema"] == {}, f"{template} answered {response.headers}"
        return response


@contextmanager
def serve(tmp_path: Path, **overrides: Any) -> Iterator[str]:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/ap-{uuid.uuid4().hex[:6]}.db",
        "api_keys": json.dumps([{"key": KEY, "principal": "blue"}, {"key": OTHER_KEY, "principal": "green"}]),
        "rate_limit_per_minute": 10_000,
    } | overrides
    with ServerThread(create_app(build(Settings(**values)), embedded_worker=True)) as server:
        try:
            yield server.url
        finally:
            while _OPEN:
                _OPEN.pop().close()


def assert_sentence(response: httpx.Response, status: int, starts: str) -> None:
    assert response.status_code == status, response.text
    text = response.json()
    assert isinstance(text, str) and text.startswith(starts), text
    assert text.endswith(".") and "pydantic" not in text and "\n" not in text


def test_stateless_runs_wait_returns_a_successful_run(tmp_path: Path) -> None:
    with serve(tmp_path) as base:
        client = SpecClient(base)
        r = client.call("post", "/runs/wait", {"input": "what is 6*7", "metadata": {"ref": "w1"}})
        assert r.status_code == 200
        out = r.json()
        assert out["run"]["status"] == "success" and out["run"]["metadata"] == {"ref": "w1"}
        assert out["values"] == {"output": "The answer is 42."}
        assert out["messages"] == [
            {"role": "user", "content": "what is 6*7"},
            {"role": "assistant", "content": "The answer is 42."},
        ]
        # the other input shapes a spec client may send
        for body in (
            {"input": {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is 2+2"}]}]}},
            {"messages": [{"role": "user", "content": "what is 2+2"}]},
            {"input": {"message": "what is 2+2"}},
        ):
            again = client.call("post", "/runs/wait", body).json()
            assert again["values"]["output"] == "The answer is 4.", body
        # GET /runs/{run_id} is not in 0.1.6 (only under a thread); it answers the spec's Run
        run = client.http.get(f"/runs/{out['run']['run_id']}")
        assert run.status_code == 200
        validate({"$ref": "#/components/schemas/Run"}, run.json(), "GET /runs/{run_id}")
        assert run.json()["status"] == "success"


def test_threads_create_get_search_history_and_runs(tmp_path: Path) -> None:
    with serve(tmp_path) as base:
        client = SpecClient(base)
        created = client.call("post", "/threads", {"metadata": {"team": "blue"}}).json()
        thread_id = created["thread_id"]
        assert created["status"] == "idle" and created["metadata"] == {"team": "blue"}
        assert_sentence(
            client.call("post", "/threads", {"thread_id": thread_id}), 409, f"Thread {thread_id} already exists"
        )
        same = client.call("post", "/threads", {"thread_id": thread_id, "if_exists": "do_nothing"}).json()
        assert same["thread_id"] == thread_id and same["metadata"] == {"team": "blue"}

        first = client.call("post", "/threads/{thread_id}/runs/wait", {"input": "what is 1+2"}, thread_id=thread_id)
        second = client.call("post", "/threads/{thread_id}/runs/wait", {"input": "what is 3*3"}, thread_id=thread_id)
        assert first.json()["run"]["thread_id"] == thread_id and second.json()["values"]["output"] == "The answer is 9."

        thread = client.call("get", "/threads/{thread_id}", thread_id=thread_id).json()
        assert thread["status"] == "idle"
        assert [m["content"] for m in thread["messages"]] == [
            "what is 1+2",
            "The answer is 3.",
            "what is 3*3",
            "The answer is 9.",
        ]

        history = client.call("get", "/threads/{thread_id}/history", thread_id=thread_id).json()
        assert [h["checkpoint"]["checkpoint_id"] for h in history] == [
            second.json()["run"]["run_id"],
            first.json()["run"]["run_id"],
        ]
        assert len(history[0]["messages"]) == 4 and len(history[1]["messages"]) == 2
        older = client.call(
            "get",
            "/threads/{thread_id}/history",
            query={"before": history[0]["checkpoint"]["checkpoint_id"], "limit": 5},
            thread_id=thread_id,
        ).json()
        assert [h["checkpoint"]["checkpoint_id"] for h in older] == [first.json()["run"]["run_id"]]

        runs = client.call("get", "/threads/{thread_id}/runs", thread_id=thread_id).json()
        assert [r["run_id"] for r in runs] == [second.json()["run"]["run_id"], first.json()["run"]["run_id"]]
        one = client.call(
            "get", "/threads/{thread_id}/runs/{run_id}", thread_id=thread_id, run_id=runs[1]["run_id"]
        ).json()
        assert one["status"] == "success" and one["kwargs"]["input"] == "what is 1+2"

        other = client.call("post", "/threads", {"metadata": {"team": "red"}}).json()
        found = client.call("post", "/threads/search", {"metadata": {"team": "blue"}}).json()
        assert [t["thread_id"] for t in found] == [thread_id]
        everything = client.call("post", "/threads/search", {"limit": 10}).json()
        assert [t["thread_id"] for t in everything] == [other["thread_id"], thread_id]  # newest first
        assert [
            t["thread_id"] for t in client.call("post", "/threads/search", {"status": "idle", "offset": 1}).json()
        ] == [thread_id]

        # threads belong to the key that made them: another key neither sees nor runs on them
        stranger = SpecClient(base, OTHER_KEY)
        assert_sentence(stranger.call("get", "/threads/{thread_id}", thread_id=thread_id), 404, "Thread")
        assert stranger.call("post", "/threads/search", {}).json() == []
        denied = stranger.call("post", "/threads/{thread_id}/runs/wait", {"input": "hi"}, thread_id=thread_id)
        assert_sentence(denied, 404, "Thread")
        assert_sentence(
            stranger.call("get", "/threads/{thread_id}/runs/{run_id}", thread_id=thread_id, run_id=runs[0]["run_id"]),
            404,
            "Thread",
        )


def test_background_runs_call_the_webhook(tmp_path: Path, receiver: Receiver) -> None:
    with serve(tmp_path, callback_allow_private=True) as base:
        client = SpecClient(base)
        accepted = client.call("post", "/runs", {"input": "what is 6*7", "webhook": receiver.url, "metadata": {"n": 1}})
        run = accepted.json()
        validate({"$ref": "#/components/schemas/Run"}, run, "POST /runs")
        assert run["status"] == "pending" and run["kwargs"]["webhook"] == receiver.url
        assert receiver.event.wait(30), "the webhook was not called"
        hook = receiver.received[0]["json"]
        assert hook["data"]["status"] == "success" and hook["data"]["result"] == "The answer is 42."
        assert hook["data"]["metadata"] == {"n": 1}
        done = client.http.get(f"/runs/{run['run_id']}").json()
        assert done["status"] == "success"

        # a background run on a thread, joined with the spec's wait endpoint
        thread_id = str(uuid.uuid4())
        started = client.call(
            "post",
            "/threads/{thread_id}/runs",
            {"input": "what is 5*5", "if_not_exists": "create"},
            thread_id=thread_id,
        ).json()
        joined = client.call(
            "get", "/threads/{thread_id}/runs/{run_id}/wait", thread_id=thread_id, run_id=started["run_id"]
        ).json()
        assert joined["run"]["status"] == "success" and joined["values"]["output"] == "The answer is 25."


def _sse(response: httpx.Response) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_runs_stream_sends_metadata_updates_values_end(tmp_path: Path) -> None:
    with serve(tmp_path) as base:
        client = SpecClient(base)
        body = {"input": "what is 6*7", "stream_mode": ["updates", "values"]}
        validate(
            SPEC["paths"]["/runs/stream"]["post"]["requestBody"]["content"]["application/json"]["schema"],
            body,
            "request",
        )
        r = client.http.post("/runs/stream", json=body)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _sse(r)
        assert events[0][0] == "metadata"
        validate({"type": "string", "format": "uuid"}, events[0][1]["run_id"], "metadata run_id")
        updates = [data["agent"]["type"] for kind, data in events if kind == "updates"]
        assert updates == ["thinking", "action", "observation", "thinking", "result"]
        assert events[-2] == (
            "values",
            {
                "output": "The answer is 42.",
                "messages": [
                    {"role": "user", "content": "what is 6*7"},
                    {"role": "assistant", "content": "The answer is 42."},
                ],
            },
        )
        assert events[-1] == ("end", {"status": "success"})
        # the default stream_mode is the spec's ["values"]: no per-step events
        plain = _sse(client.http.post("/runs/stream", json={"input": "what is 1+1"}))
        assert [kind for kind, _ in plain] == ["metadata", "values", "end"]


@pytest.mark.parametrize(
    ("template", "body", "status", "starts"),
    [
        ("/runs/wait", {}, 422, "The field 'input' must be the message as a string"),
        ("/runs/wait", {"input": ""}, 422, "The field 'input' must not be empty"),
        (
            "/runs/wait",
            {"input": "hi", "multitask_strategy": "rollback"},
            422,
            "The field 'multitask_strategy' cannot be 'rollback'",
        ),
        ("/runs/wait", {"input": "hi", "after_seconds": 5}, 422, "The field 'after_seconds' is not supported"),
        ("/runs/wait", {"input": "hi", "config": {"tags": ["x"]}}, 422, "The field 'config' is not supported"),
        (
            "/runs/wait",
            {"input": "hi", "webhook": "https://example.com/h"},
            422,
            "The field 'webhook' is for background runs",
        ),
        ("/runs/wait", {"input": "hi", "agent_id": "other"}, 404, "Agent other not found"),
        ("/runs/stream", {"input": "hi", "stream_mode": "custom"}, 422, "The field 'stream_mode' has 'custom'"),
        ("/runs", {"input": "hi", "webhook": "ftp://example.com/h"}, 422, "The field 'webhook' is invalid"),
        ("/runs/wait", {"input": "hi", "metadata": "x"}, 422, "The field 'metadata' is invalid"),
    ],
)
def test_mistakes_are_spec_error_strings(tmp_path: Path, template: str, body: Any, status: int, starts: str) -> None:
    with serve(tmp_path) as base:
        response = SpecClient(base).call("post", template, body, check_request=False)
        assert_sentence(response, status, starts)


def test_unknown_ids_and_fields(tmp_path: Path) -> None:
    with serve(tmp_path) as base:
        client = SpecClient(base)
        missing = str(uuid.uuid4())
        assert_sentence(
            client.call("get", "/threads/{thread_id}", thread_id=missing), 404, f"Thread {missing} not found"
        )
        assert_sentence(
            client.call("post", "/threads/{thread_id}/runs/wait", {"input": "hi"}, thread_id=missing),
            404,
            f"Thread {missing} not found; create it first",
        )
        assert_sentence(
            client.call("post", "/runs/wait", {"input": "hi", "inptu": 1}, check_request=False),
            422,
            "Unknown field 'inptu'",
        )
        bad = client.http.get("/threads/not-a-uuid")
        assert_sentence(bad, 422, "The path parameter 'thread_id' must be a UUID")
        assert_sentence(client.http.get(f"/runs/{missing}"), 404, f"Run {missing} not found")


def test_multitask_strategies_on_a_busy_thread(tmp_path: Path) -> None:
    with serve(tmp_path, llm_think_seconds=1.0) as base:
        client = SpecClient(base)
        thread_id = client.call("post", "/threads", {}).json()["thread_id"]

        def start(message: str) -> dict[str, Any]:
            run = client.call("post", "/threads/{thread_id}/runs", {"input": message}, thread_id=thread_id).json()
            deadline = time.monotonic() + 30
            while client.call("get", "/threads/{thread_id}", thread_id=thread_id).json()["status"] != "busy":
                assert time.monotonic() < deadline, "the background run never started"
                time.sleep(0.05)
            return run

        def join(run: dict[str, Any]) -> dict[str, Any]:
            return client.call(
                "get", "/threads/{thread_id}/runs/{run_id}/wait", thread_id=thread_id, run_id=run["run_id"]
            ).json()

        def wait(message: str, strategy: str | None = None) -> httpx.Response:
            body = {"input": message} | ({"multitask_strategy": strategy} if strategy else {})
            return client.call("post", "/threads/{thread_id}/runs/wait", body, thread_id=thread_id)

        first = start("what is 2*21")
        assert_sentence(wait("what is 1+1"), 409, f"Thread {thread_id} has a run in progress")  # spec default: reject
        interrupting = wait("what is 1+1", "interrupt").json()
        assert interrupting["run"]["status"] == "success" and interrupting["values"]["output"] == "The answer is 2."
        stopped = join(first)
        assert stopped["run"]["status"] == "interrupted" and stopped["values"]["error"] == "run interrupted"

        second = start("what is 3*3")
        queued = wait("what is 4+4", "enqueue").json()
        assert queued["values"]["output"] == "The answer is 8."
        assert join(second)["run"]["status"] == "success"
        assert client.call("get", "/threads/{thread_id}", thread_id=thread_id).json()["status"] == "idle"


def test_threads_are_shared_through_redis_between_instances(tmp_path: Path, redis_server: RedisProcess) -> None:
    shared = {
        "queue_backend": "redis",
        "state_backend": "redis",
        "redis_url": redis_server.url,
        "queue_stream": f"ap:{uuid.uuid4().hex[:8]}",
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/shared.db",
    }
    with serve(tmp_path, **shared) as one, serve(tmp_path, **shared) as two:
        thread_id = SpecClient(one).call("post", "/threads", {"metadata": {"k": "v"}}).json()["thread_id"]
        seen = SpecClient(two).call("get", "/threads/{thread_id}", thread_id=thread_id).json()
        assert seen["metadata"] == {"k": "v"}
        run = SpecClient(two).call("post", "/threads/{thread_id}/runs", {"input": "what is 4*4"}, thread_id=thread_id)
        joined = (
            SpecClient(one)
            .call("get", "/threads/{thread_id}/runs/{run_id}/wait", thread_id=thread_id, run_id=run.json()["run_id"])
            .json()
        )
        assert joined["values"]["output"] == "The answer is 16."


def test_join_the_stream_of_a_background_run(tmp_path: Path) -> None:
    with serve(tmp_path, llm_think_seconds=1.0) as base:
        client = SpecClient(base)
        thread_id = client.call("post", "/threads", {}).json()["thread_id"]
        run = client.call("post", "/threads/{thread_id}/runs", {"input": "what is 7*6"}, thread_id=thread_id).json()
        joined = client.call(
            "get", "/threads/{thread_id}/runs/{run_id}/stream", thread_id=thread_id, run_id=run["run_id"]
        )
        assert joined.headers["content-type"].startswith("text/event-stream")
        events = _sse(joined)
        assert events[0] == ("metadata", {"run_id": run["run_id"], "thread_id": thread_id})
        steps = [data["agent"]["type"] for kind, data in events if kind == "updates"]
        # only what is produced after joining is streamed; the model's second turn comes 1 s later
        assert steps[-2:] == ["thinking", "result"], steps
        assert events[-2][1]["output"] == "The answer is 42."
        assert events[-1] == ("end", {"status": "success"})
        # joining a finished run answers at once with its outcome
        again = _sse(
            client.call("get", "/threads/{thread_id}/runs/{run_id}/stream", thread_id=thread_id, run_id=run["run_id"])
        )
        assert [kind for kind, _ in again] == ["metadata", "values", "end"] and again[-1][1] == {"status": "success"}
