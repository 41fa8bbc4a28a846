"""The chat page end to end: ``agent-app serve`` in a subprocess, Debian's chromium driven by
Playwright. A person types a message and sees the steps and the result; a reload in the middle of
the run resumes from the last event id without losing or repeating steps; a wrong key is a sentence.

Needs ``apt-get install chromium`` (skipped, saying so, only when it is missing) and the
``playwright`` package from the dev extra. ``playwright install`` is never used."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.conftest import free_port, wait_port

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
KEY = "ui-key-1"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: apt-get install -y chromium"),
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``agent-app serve`` as a user starts it, with a key and a slow offline model (2.5 s a call),
    so a run lasts long enough to reload the page in the middle of it."""
    port = free_port()
    env = {
        **os.environ,
        "AGENT_API_KEYS": KEY,
        "AGENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ui.db",
        "AGENT_LLM_THINK_SECONDS": "2.5",
        "AGENT_RATE_LIMIT_PER_MINUTE": "1000",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_infra.agent_app.cli", "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_port(port, timeout=60)
            except TimeoutError:
                pytest.fail(f"agent-app serve did not start: {log.read_text()[-2000:]}")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _steps(page: Any) -> list[str]:
    return page.eval_on_selector_all("#transcript > li", "items => items.map(i => i.dataset.type)")


def test_page_is_served_from_the_package(served: str) -> None:
    page = httpx.get(f"{served}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js">' in page.text
    assert httpx.get(f"{served}/ui/app.js").status_code == 200
    assert httpx.get(f"{served}/ui/style.css").status_code == 200


def test_chat_streams_steps_and_resumes_after_reload(served: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            sockets: list[str] = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.goto(served)
            page.fill("#api-key", KEY)
            page.click("#key-form button")
            page.wait_for_selector("#connection.open", timeout=20_000)
            page.fill("#message", "what is 6*7")
            page.keyboard.press("Enter")

            # the first step arrives while the run goes on: reload right then
            page.wait_for_selector("#transcript li.thinking", timeout=30_000)
            before = _steps(page)
            assert "result" not in before, before
            page.reload()

            page.wait_for_selector("#transcript li.result", timeout=60_000)
            steps = [s for s in _steps(page) if s != "status"]
            assert steps == ["user", "thinking", "action", "observation", "thinking", "result"], steps
            assert page.inner_text("#transcript li.result").endswith("The answer is 42.")
            assert "calculator" in page.inner_text("#transcript li.action")
            assert page.inner_text("#transcript li.observation").endswith("42")
            # the reloaded page resumed from the last event it had seen, and no key was put in a URL
            assert len(sockets) >= 2 and "last_event_id=" in sockets[-1], sockets
            assert all(KEY not in url for url in sockets)

            # a second message; the page is left mid-run and opened again once the run is over:
            # the steps produced while no page was open are replayed from the last event id
            page.fill("#message", "what is 2+2")
            page.click("#send")
            page.wait_for_function(
                "() => document.querySelectorAll('#transcript li.thinking').length === 3", timeout=60_000
            )
            task_id = page.evaluate(
                "() => JSON.parse(sessionStorage.getItem(`agent.events.${localStorage.getItem('agent.session')}`))"
                ".filter(e => e.type === 'thinking').pop().task_id"
            )
            page.goto("about:blank")
            deadline = time.monotonic() + 60
            while httpx.get(f"{served}/v1/tasks/{task_id}", headers={"X-API-Key": KEY}).json()["status"] != "success":
                assert time.monotonic() < deadline, "the second run did not finish"
                time.sleep(0.2)
            page.goto(served)
            page.wait_for_function(
                "() => document.querySelectorAll('#transcript li.result').length === 2", timeout=60_000
            )
            steps = [s for s in _steps(page) if s != "status"]
            assert steps[6:] == ["user", "thinking", "action", "observation", "thinking", "result"], steps
            assert page.inner_text("#transcript li.result >> nth=1").endswith("The answer is 4.")
        finally:
            browser.close()


def test_wrong_or_missing_key_is_a_sentence(served: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(served)
            page.fill("#api-key", "not-the-key")
            page.click("#key-form button")
            page.wait_for_selector("#notice:not([hidden])", timeout=20_000)
            assert page.inner_text("#notice") == "API key not recognised. Enter the API key above."
            assert page.inner_text("#connection") == "needs API key"

            # no key at all: the first message is refused with the reason, then sent once a key is given
            fresh = browser.new_page()
            fresh.goto(served)
            fresh.fill("#message", "what is 3*3")
            fresh.click("#send")
            fresh.wait_for_selector("#notice:not([hidden])", timeout=30_000)
            assert fresh.inner_text("#notice").startswith("This server needs an API key")
            fresh.fill("#api-key", KEY)
            fresh.click("#key-form button")
            fresh.fill("#message", "what is 3*3")
            fresh.click("#send")
            fresh.wait_for_selector("#transcript li.result", timeout=60_000)
            assert fresh.inner_text("#transcript li.result").endswith("The answer is 9.")
        finally:
            browser.close()
