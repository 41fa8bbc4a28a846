"""Vector memory in Qdrant over its REST API (``AGENT_VECTOR_BACKEND=qdrant``), with httpx only.

``init`` creates the collection (cosine distance, the embedding's dimensions) if it is missing;
``add`` upserts a point whose id is a UUID derived from the document id (Qdrant ids are
unsigned integers or UUIDs), with the text and metadata as payload; ``search`` asks for the
nearest points with their payload. ``AGENT_QDRANT_API_KEY`` is sent as the ``api-key`` header.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from ...core.embedding import DIMENSIONS, embed
from ...core.ports import BackendUnavailable

_NAMESPACE = uuid.UUID("6f1c0f4e-2b0e-4d8a-9a51-3c1e7d2a9b10")


class QdrantMemory:
    def __init__(
        self,
        url: str,
        *,
        collection: str = "agent_memory",
        api_key: str | None = None,
        timeout_seconds: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"AGENT_QDRANT_URL must be an http(s) URL, got {url!r}")
        headers = {"api-key": api_key} if api_key else {}
        self.collection = collection
        self.http = client or httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout_seconds)
        self._ready = False

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            res = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"qdrant: {type(exc).__name__}: {exc}") from exc
        if res.status_code >= 500:
            raise BackendUnavailable(f"qdrant: HTTP {res.status_code}: {res.text[:200]}")
        return res

    async def init(self) -> None:
        res = await self._call("GET", f"/collections/{self.collection}")
        if res.status_code == 404:
            created = await self._call(
                "PUT",
                f"/collections/{self.collection}",
                json={"vectors": {"size": DIMENSIONS, "distance": "Cosine"}},
            )
            # 409: another instance created it meanwhile
            if created.status_code >= 400 and created.status_code != 409:
                raise BackendUnavailable(f"qdrant: creating {self.collection}: HTTP {created.status_code}")
        elif res.status_code >= 400:
            raise BackendUnavailable(f"qdrant: {self.collection}: HTTP {res.status_code}: {res.text[:200]}")
        else:
            size = (
                res.json().get("result", {}).get("config", {}).get("params", {}).get("vectors", {}).get("size")
            )
            if size is not None and int(size) != DIMENSIONS:
                raise BackendUnavailable(
                    f"qdrant: collection {self.collection} has vectors of size {size}, the app embeds {DIMENSIONS}"
                )
        self._ready = True

    async def add(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        if not self._ready:
            await self.init()
        point = {
            "id": str(uuid.uuid5(_NAMESPACE, doc_id)),
            "vector": embed(text),
            "payload": {"doc_id": doc_id, "text": text, "metadata": metadata or {}},
        }
        res = await self._call(
            "PUT", f"/collections/{self.collection}/points", params={"wait": "true"}, json={"points": [point]}
        )
        if res.status_code >= 400:
            raise BackendUnavailable(f"qdrant: upsert: HTTP {res.status_code}: {res.text[:200]}")

    async def search(
        self, query: str, k: int = 3, namespace: str | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        if not self._ready:
            await self.init()
        body: dict[str, Any] = {"vector": embed(query), "limit": max(1, min(k, 20)), "with_payload": True}
        if namespace is not None:  # a payload filter: Qdrant applies it inside the HNSW search
            body["filter"] = {"must": [{"key": "metadata.principal", "match": {"value": namespace}}]}
        res = await self._call("POST", f"/collections/{self.collection}/points/search", json=body)
        if res.status_code >= 400:
            raise BackendUnavailable(f"qdrant: search: HTTP {res.status_code}: {res.text[:200]}")
        out = []
        for hit in res.json().get("result", []):
            payload = hit.get("payload") or {}
            score = float(hit.get("score", 0.0))
            if score > 0.05:
                out.append((str(payload.get("text", "")), score, dict(payload.get("metadata") or {})))
        return out

    async def ping(self) -> None:
        res = await self._call("GET", "/collections")
        if res.status_code >= 400:
            raise BackendUnavailable(f"qdrant: HTTP {res.status_code}")

    async def close(self) -> None:
        await self.http.aclose()
