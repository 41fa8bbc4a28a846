"""In-process vector memory (embedded default): brute-force cosine over hashed embeddings.

Vectors are kept sparse (the hashed features of a short text touch few of the 256 dimensions), and
a text already stored for the same principal replaces its older copy: the same question asked 200
times is one document, so search time does not grow with repetition. Distinct documents are kept
up to ``max_items`` (oldest dropped first)."""

from __future__ import annotations

import hashlib
from typing import Any

from ...core.embedding import embed
from ...core.models import DEFAULT_PRINCIPAL


def _sparse(text: str) -> dict[int, float]:
    return {i: v for i, v in enumerate(embed(text)) if v}


class MemoryVectors:
    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._items: dict[str, tuple[str, dict[int, float], dict[str, Any]]] = {}
        self._by_text: dict[tuple[str, str], str] = {}

    async def add(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        meta = metadata or {}
        same = (str(meta.get("principal", DEFAULT_PRINCIPAL)), hashlib.sha256(text.encode()).hexdigest())
        previous = self._by_text.get(same)
        if previous is not None and previous != doc_id:
            self._items.pop(previous, None)
        self._by_text[same] = doc_id
        self._items.pop(doc_id, None)  # re-added: now the newest
        self._items[doc_id] = (text, _sparse(text), meta)
        while len(self._items) > self.max_items:
            self._items.pop(next(iter(self._items)))
        if len(self._by_text) > 2 * self.max_items:
            self._by_text = {k: v for k, v in self._by_text.items() if v in self._items}

    async def search(
        self, query: str, k: int = 3, namespace: str | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        q = _sparse(query)
        scored = [
            (text, sum(q.get(i, 0.0) * v for i, v in vec.items()), meta)
            for text, vec, meta in self._items.values()
            if namespace is None or meta.get("principal", DEFAULT_PRINCIPAL) == namespace
        ]
        scored = [s for s in scored if s[1] > 0.05]
        return sorted(scored, key=lambda s: s[1], reverse=True)[: max(1, min(k, 20))]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
