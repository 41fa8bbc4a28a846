"""In-process vector memory (embedded default): brute-force cosine over hashed embeddings."""

from __future__ import annotations

from typing import Any

from agent_app.core.embedding import cosine, embed
from agent_app.core.models import DEFAULT_PRINCIPAL


class MemoryVectors:
    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._items: dict[str, tuple[str, list[float], dict[str, Any]]] = {}

    async def add(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        self._items[doc_id] = (text, embed(text), metadata or {})
        while len(self._items) > self.max_items:
            self._items.pop(next(iter(self._items)))

    async def search(
        self, query: str, k: int = 3, namespace: str | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        q = embed(query)
        scored = [
            (text, cosine(q, vec), meta)
            for text, vec, meta in self._items.values()
            if namespace is None or meta.get("principal", DEFAULT_PRINCIPAL) == namespace
        ]
        scored = [s for s in scored if s[1] > 0.05]
        return sorted(scored, key=lambda s: s[1], reverse=True)[: max(1, min(k, 20))]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
