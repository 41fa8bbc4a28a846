"""VectorMemory contract: in-process, Qdrant's REST API and OpenSearch Serverless (local fake servers; the
OpenSearch fake recomputes each request's SigV4 signature for the service ``aoss``), and pgvector on the throwaway PostgreSQL when the extension
is installed there (the skip reason says what to install; set AGENT_TEST_PGVECTOR=1 to make its
absence a failure; it is mandatory whenever the pgserver wheel provides the server)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agent_infra.agent_app.adapters.vector.memory import MemoryVectors
from agent_infra.agent_app.adapters.vector.opensearch import OpenSearchMemory, region_from_endpoint
from agent_infra.agent_app.adapters.vector.pgvector import PgVectorMemory
from agent_infra.agent_app.adapters.vector.qdrant import QdrantMemory
from agent_infra.agent_app.core.embedding import DIMENSIONS
from agent_infra.agent_app.core.ports import VectorMemory
from sqlalchemy.exc import DBAPIError

from tests.app.conftest import PG_HAS_PGVECTOR

INSTALL = ("pgvector extension missing: pip install pgserver (x86_64: PostgreSQL 16 + pgvector, used "
           "automatically) or apt-get install postgresql-15-pgvector (PGDG apt repository)")


@pytest.fixture(params=["memory", "qdrant", "opensearch", "pgvector"])
async def memory(request: pytest.FixtureRequest) -> AsyncIterator[VectorMemory]:
    if request.param == "memory":
        yield MemoryVectors()
        return
    if request.param == "qdrant":
        fake = request.getfixturevalue("fake_qdrant")
        q = QdrantMemory(fake.url, collection="mem", api_key="qk-test")
        await q.init()
        await q.init()  # idempotent: the collection exists now
        yield q
        await q.close()
        assert fake.collections["mem"]["size"] == DIMENSIONS
        return
    if request.param == "opensearch":
        fake_os = request.getfixturevalue("fake_opensearch")
        o = OpenSearchMemory(fake_os.url, index="mem")
        await o.init()
        await o.init()  # idempotent: the index exists now
        yield o
        await o.close()
        assert fake_os.indexes["mem"]["mappings"]["properties"]["embedding"]["dimension"] == DIMENSIONS
        assert fake_os.rejected == [] and len(fake_os.signed_headers) == len(fake_os.requests)
        return
    pg = request.getfixturevalue("postgres_server")
    store = PgVectorMemory(pg.url)
    try:
        await store.init()
    except DBAPIError as exc:
        await store.close()
        if os.environ.get("AGENT_TEST_PGVECTOR") == "1" or PG_HAS_PGVECTOR:
            pytest.fail(f"{INSTALL}: {exc.orig}")
        pytest.skip(INSTALL)
    yield store
    await store.close()


async def test_search_ranks_related_text_first(memory: VectorMemory) -> None:
    await memory.add("1", "Q: capital of France\nA: Paris")
    await memory.add("2", "Q: boiling point of water\nA: 100 degrees")
    await memory.add("3", "Q: capital of Italy\nA: Rome")
    hits = await memory.search("what is the capital of France", k=2)
    assert hits[0][0].startswith("Q: capital of France") and hits[0][1] > hits[-1][1]
    assert isinstance(memory, VectorMemory)


async def test_qdrant_wiring_and_errors(fake_qdrant: Any) -> None:
    from agent_infra.agent_app.core.ports import BackendUnavailable
    from agent_infra.agent_app.settings import Settings
    from agent_infra.agent_app.wiring import ConfigurationError, build_vectors

    with pytest.raises(ConfigurationError, match="AGENT_QDRANT_URL"):
        build_vectors(Settings(vector_backend="qdrant"))
    wired = build_vectors(Settings(vector_backend="qdrant", qdrant_url=fake_qdrant.url, qdrant_api_key="qk-test"))
    assert isinstance(wired, QdrantMemory)
    await wired.add("t1", "Q: 6*7\nA: 42", {"session_id": "s"})  # creates the collection on first use
    assert (await wired.search("6*7"))[0][2] == {"session_id": "s"}
    await wired.ping()
    await wired.close()
    wrong_key = QdrantMemory(fake_qdrant.url, api_key="nope")
    with pytest.raises(BackendUnavailable, match="401"):
        await wrong_key.ping()
    await wrong_key.close()
    down = QdrantMemory("http://127.0.0.1:9", timeout_seconds=0.5)
    with pytest.raises(BackendUnavailable, match="qdrant"):
        await down.ping()
    await down.close()


async def test_search_replaces_a_document_added_again(memory: VectorMemory) -> None:
    await memory.add("d", "Q: tallest mountain\nA: K2", {"v": 1})
    await memory.add("d", "Q: tallest mountain\nA: Everest", {"v": 2})
    hits = await memory.search("tallest mountain", k=5)
    assert [(h[0], h[2]) for h in hits] == [("Q: tallest mountain\nA: Everest", {"v": 2})]


async def test_opensearch_wiring_signing_and_errors(fake_opensearch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_infra.agent_app.core.ports import BackendUnavailable
    from agent_infra.agent_app.settings import Settings
    from agent_infra.agent_app.wiring import ConfigurationError, build_vectors

    with pytest.raises(ConfigurationError, match="AGENT_VECTOR_ENDPOINT"):
        build_vectors(Settings(vector_backend="opensearch"))
    assert region_from_endpoint("https://abc123xyz.us-gov-west-1.aoss.amazonaws.com") == "us-gov-west-1"
    assert region_from_endpoint("http://127.0.0.1:9200") is None
    # The region in an aoss host name wins over the environment's.
    assert OpenSearchMemory("https://abc.ap-southeast-2.aoss.amazonaws.com").region == "ap-southeast-2"
    wired = build_vectors(Settings(vector_backend="opensearch", vector_endpoint=fake_opensearch.url))
    assert isinstance(wired, OpenSearchMemory) and wired.region == "eu-west-3" and wired.index == "agent-memory"
    await wired.add("t1", "Q: 6*7\nA: 42", {"session_id": "s"})  # creates the index on first use
    assert (await wired.search("6*7"))[0][2] == {"session_id": "s"}
    await wired.ping()
    await wired.close()
    assert fake_opensearch.rejected == [] and "agent-memory" in fake_opensearch.indexes
    assert all("x-amz-security-token" in signed for signed in fake_opensearch.signed_headers)

    # Wrong secret: the server's signature differs -> 403 -> BackendUnavailable.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    wrong = OpenSearchMemory(fake_opensearch.url)
    with pytest.raises(BackendUnavailable, match="403"):
        await wrong.ping()
    await wrong.close()
    assert fake_opensearch.rejected[-1] == "signature mismatch"
    # Signed for another region (as a misconfigured AWS_REGION would be).
    other = OpenSearchMemory(fake_opensearch.url, region="us-east-1")
    with pytest.raises(BackendUnavailable, match="403"):
        await other.search("x")
    await other.close()
    down = OpenSearchMemory("http://127.0.0.1:9", timeout_seconds=0.5)
    with pytest.raises(BackendUnavailable, match="opensearch"):
        await down.ping()
    await down.close()
