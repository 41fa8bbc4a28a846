"""Bounded work per request: the same message 200 times against the running server stays flat.

Before the bound, each ``{"message": "0"}`` retrieved the previous results, which held the results
before them: replies grew ~1.84x per call until the server stopped answering."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import httpx
from agent_infra.agent_app.core.bounds import clip, memory_text

from tests.app.test_api import auth, serve


def test_same_message_200_times_flat_size_and_latency_healthz_answers(tmp_path: Path) -> None:
    with serve(tmp_path, None) as srv:
        health: list[tuple[int, float]] = []
        done = threading.Event()

        def probe() -> None:
            with httpx.Client(timeout=10) as client:
                while not done.is_set():
                    started = time.monotonic()
                    try:
                        code = client.get(f"{srv.url}/healthz").status_code
                    except httpx.HTTPError:
                        code = 0
                    health.append((code, time.monotonic() - started))
                    done.wait(0.1)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        sizes: list[int] = []
        seconds: list[float] = []
        try:
            with httpx.Client(timeout=30, headers=auth()) as client:
                for _ in range(200):
                    started = time.monotonic()
                    r = client.post(f"{srv.url}/v1/runs", json={"message": "0"})
                    seconds.append(time.monotonic() - started)
                    assert r.status_code == 200, r.text
                    sizes.append(len(r.content))
        finally:
            done.set()
            prober.join(15)
        # flat: after the memory fills its top-k (a few calls) the reply no longer grows (a few
        # bytes move with the width of event ids and timings)
        assert max(sizes[10:]) - min(sizes[10:]) < 100, (sizes[:12], sizes[-3:])
        assert max(sizes) < 8_000, max(sizes)
        early, late = statistics.median(seconds[10:40]), statistics.median(seconds[-30:])
        print(f"sizes {sizes[0]} -> {sizes[10]} -> {sizes[-1]} B; median latency {early * 1000:.1f} -> "
              f"{late * 1000:.1f} ms; {len(health)} /healthz probes, max {max(s for _, s in health) * 1000:.0f} ms")
        assert late < 5 * early + 0.05, (early, late)
        assert health and all(code == 200 for code, _ in health), [h for h in health if h[0] != 200][:5]
        assert max(s for _, s in health) < 5, max(s for _, s in health)


def test_memory_text_never_reembeds_retrieved_text() -> None:
    observation = "- (1.00) Q: 0\nA: an earlier answer"
    steps = [{"type": "observation", "content": {"tool": "retrieve", "output": observation}}]
    result = f"Related past results:\n{observation}\nYou said: 0"
    stored = memory_text("0", result, steps)
    assert observation not in stored and "[retrieved]" in stored
    assert len(memory_text("q" * 10_000, "a" * 10_000, []).encode()) <= 2_048


def test_clip_bounds_bytes_on_character_boundaries() -> None:
    text = "é" * 5_000  # two bytes each
    cut = clip(text, 1_000)
    assert len(cut.encode()) <= 1_000 and cut.endswith("bytes]")
    assert clip("short", 1_000) == "short"
