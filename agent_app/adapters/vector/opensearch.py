"""Vector memory in an OpenSearch Serverless collection (``AGENT_VECTOR_BACKEND=opensearch``).

Talks to the collection's REST endpoint (``AGENT_VECTOR_ENDPOINT``,
``https://<id>.<region>.aoss.amazonaws.com``) with httpx; every request is signed with AWS
Signature Version 4 for the service ``aoss`` (botocore's ``SigV4Auth`` over the default credential
chain: the ECS task role in a task, env keys or a profile elsewhere). Credentials are re-read from
the chain per request (refreshable credentials rotate underneath).

* ``init`` creates the index if it is missing: ``index.knn: true``, an ``embedding`` field of type
  ``knn_vector`` with the embedding's dimension, HNSW on the faiss engine with ``innerproduct``
  (the embeddings are L2-normalised, so inner product *is* cosine similarity), plus ``doc_id``
  (keyword), ``text`` and ``metadata`` (stored, not indexed). An existing index with another
  dimension is an error that says so.
* ``add``: vector search collections refuse custom document ids, so a document is ``POST``-ed to
  ``<index>/_doc`` with its id as the ``doc_id`` field, after deleting the copies an earlier ``add``
  of the same id left (found with a ``term`` query): the same upsert semantics as the other stores.
  Serverless makes new documents searchable within seconds, not at once.
* ``search``: a ``knn`` query; the faiss inner-product score (``1 + ip`` for ``ip >= 0``, else
  ``1 / (1 - ip)``) is turned back into the cosine similarity the port promises.

The region is the one in the endpoint's host name; for other endpoints (a proxy, a test server)
``AWS_REGION`` / ``AWS_DEFAULT_REGION`` or the boto3 session's region.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from typing import Any
from urllib.parse import quote

import httpx

from ...core.embedding import DIMENSIONS, embed
from ...core.ports import BackendUnavailable

SERVICE = "aoss"
VECTOR_FIELD = "embedding"
_HOST_REGION = re.compile(r"^[a-z0-9-]+\.([a-z]{2}(?:-[a-z]+)+-\d+)\.aoss(?:-fips)?\.amazonaws\.com(?::\d+)?$")
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_+.-]{0,254}$")


def region_from_endpoint(endpoint: str) -> str | None:
    """``us-east-1`` from ``https://abc123.us-east-1.aoss.amazonaws.com``; None for other hosts."""
    host = httpx.URL(endpoint).host
    match = _HOST_REGION.match(host)
    return match.group(1) if match else None


def similarity_from_score(score: float) -> float:
    """Invert OpenSearch's faiss ``innerproduct`` scoring back to the inner product (= cosine here)."""
    if score >= 1.0:
        return score - 1.0
    return 1.0 - 1.0 / score if score > 0 else -1.0


class OpenSearchMemory:
    def __init__(
        self,
        endpoint: str,
        *,
        index: str = "agent-memory",
        region: str | None = None,
        session: Any = None,
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"AGENT_VECTOR_ENDPOINT must be an http(s) URL, got {endpoint!r}")
        if not _INDEX_NAME.match(index):
            raise ValueError(f"OpenSearch index name {index!r}: lower case letters, digits, '-', '_', '.', '+'")
        import boto3  # the app extra; imported here so other backends never pay for it

        self.endpoint = endpoint.rstrip("/")
        self.index = index
        self._session = session or boto3.Session()
        self.region = (
            region
            or region_from_endpoint(self.endpoint)
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or self._session.region_name
        )
        if not self.region:
            raise ValueError(
                f"AGENT_VECTOR_ENDPOINT={self.endpoint}: cannot tell the AWS region for SigV4; set AWS_REGION"
            )
        self.http = client or httpx.AsyncClient(timeout=timeout_seconds)
        self._ready = False

    # -- transport ---------------------------------------------------------------------------------
    def _signed_headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._session.get_credentials()
        if credentials is None:
            raise BackendUnavailable("opensearch: no AWS credentials found (default credential chain)")
        frozen = credentials.get_frozen_credentials()  # refreshes expiring role credentials
        headers = {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
        if body:
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(frozen, SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())

    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        url = self.endpoint + path
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            # Reading credentials may call the ECS/IMDS endpoint: keep that off the event loop.
            headers = await asyncio.to_thread(self._signed_headers, method, url, payload)
            res = await self.http.request(method, url, content=payload or None, headers=headers)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"opensearch: {type(exc).__name__}: {exc}") from exc
        except BackendUnavailable:
            raise
        except Exception as exc:  # botocore credential errors
            raise BackendUnavailable(f"opensearch: signing: {type(exc).__name__}: {exc}") from exc
        if res.status_code >= 500 or res.status_code in (401, 403):
            raise BackendUnavailable(f"opensearch: {method} {path}: HTTP {res.status_code}: {res.text[:200]}")
        return res

    def _check(self, res: httpx.Response, what: str) -> Any:
        if res.status_code >= 400:
            raise BackendUnavailable(f"opensearch: {what}: HTTP {res.status_code}: {res.text[:200]}")
        return res.json() if res.content else {}

    # -- port ----------------------------------------------------------------------------------------
    def index_body(self) -> dict[str, Any]:
        return {
            "settings": {"index": {"knn": True}},
            "mappings": {
                "properties": {
                    VECTOR_FIELD: {
                        "type": "knn_vector",
                        "dimension": DIMENSIONS,
                        "method": {
                            "name": "hnsw",
                            "engine": "faiss",
                            "space_type": "innerproduct",
                            "parameters": {"m": 16, "ef_construction": 128},
                        },
                    },
                    "doc_id": {"type": "keyword"},
                    "text": {"type": "text", "index": False},
                    "metadata": {"type": "object", "enabled": False},
                }
            },
        }

    async def init(self) -> None:
        path = "/" + quote(self.index, safe="")
        res = await self._call("GET", path)
        if res.status_code == 404:
            created = await self._call("PUT", path, self.index_body())
            # 400 resource_already_exists_exception: another instance created it meanwhile
            if created.status_code >= 400 and "resource_already_exists_exception" not in created.text:
                raise BackendUnavailable(
                    f"opensearch: creating index {self.index}: HTTP {created.status_code}: {created.text[:200]}"
                )
        else:
            info = self._check(res, f"index {self.index}")
            mapping: dict[str, Any] = next(iter(info.values()), {}) if isinstance(info, dict) else {}
            field = mapping.get("mappings", {}).get("properties", {}).get(VECTOR_FIELD, {})
            dimension = field.get("dimension")
            if dimension is not None and int(dimension) != DIMENSIONS:
                raise BackendUnavailable(
                    f"opensearch: index {self.index} has {VECTOR_FIELD} of dimension {dimension}, "
                    f"the app embeds {DIMENSIONS}"
                )
        self._ready = True

    async def add(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        if not self._ready:
            await self.init()
        index = quote(self.index, safe="")
        found = self._check(
            await self._call(
                "POST", f"/{index}/_search", {"size": 100, "_source": False, "query": {"term": {"doc_id": doc_id}}}
            ),
            "search by doc_id",
        )
        for hit in found.get("hits", {}).get("hits", []):
            gone = await self._call("DELETE", f"/{index}/_doc/{quote(str(hit['_id']), safe='')}")
            if gone.status_code >= 400 and gone.status_code != 404:
                self._check(gone, "delete the previous copy")
        document = {"doc_id": doc_id, "text": text, "metadata": metadata or {}, VECTOR_FIELD: embed(text)}
        self._check(await self._call("POST", f"/{index}/_doc", document), "index document")

    async def search(
        self, query: str, k: int = 3, namespace: str | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        if not self._ready:
            await self.init()
        k = max(1, min(k, 20))
        # ``metadata`` is stored, not indexed: a namespace is filtered here, over 4x the hits
        fetch = k if namespace is None else 4 * k
        body = {
            "size": fetch,
            "_source": ["doc_id", "text", "metadata"],
            "query": {"knn": {VECTOR_FIELD: {"vector": embed(query), "k": fetch}}},
        }
        found = self._check(await self._call("POST", f"/{quote(self.index, safe='')}/_search", body), "k-NN search")
        out: list[tuple[str, float, dict[str, Any]]] = []
        seen: set[str] = set()
        for hit in found.get("hits", {}).get("hits", []):
            source = hit.get("_source") or {}
            key = str(source.get("doc_id", hit.get("_id")))
            similarity = similarity_from_score(float(hit.get("_score") or 0.0))
            if key in seen or similarity <= 0.05:  # a copy not yet deleted everywhere, or unrelated
                continue
            if namespace is not None and (source.get("metadata") or {}).get("principal", "default") != namespace:
                continue
            seen.add(key)
            out.append((str(source.get("text", "")), similarity, dict(source.get("metadata") or {})))
        return sorted(out, key=lambda hit: hit[1], reverse=True)[:k]

    async def ping(self) -> None:
        res = await self._call("HEAD", "/" + quote(self.index, safe=""))
        if res.status_code >= 400 and res.status_code != 404:
            raise BackendUnavailable(f"opensearch: HTTP {res.status_code}")

    async def close(self) -> None:
        await self.http.aclose()
