"""VectorMemory contract: in-process, Qdrant's REST API (a local fake server), and pgvector on the throwaway PostgreSQL when the extension
is installed there (the skip reason says what to install; set AGENT_TEST_PGVECTOR=1 to make its
absence a failure; it is mandatory whenever the pgserver wheel provides the server)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from agent_app.adapters.vector.memory import MemoryVectors
from agent_app.adapters.vector.pgvector import PgVectorMemory
from agent_app.adapters.vector.qdrant import QdrantMemory
from agent_app.core.embedding import DIMENSIONS
from agent_app.core.ports import VectorMemory
from tests.app.conftest import PG_HAS_PGVECTOR

INSTALL = ("pgvector extension missing: pip install pgserver (x86_64: PostgreSQL 16 + pgvector, used "
           "automatically) or apt-get install postgresql-15-pgvector (PGDG apt repository)")


@pytest.fixture(params=["memory", "qdrant", "pgvector"])
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
    from agent_app.core.ports import BackendUnavailable
    from agent_app.settings import Settings
    from agent_app.wiring import ConfigurationError, build_vectors

    with pytest.raises(ConfigurationError, match="AGENT_QDRANT_URL"):
        build_vectors(Settings(vector_backend="qdrant"))
    with pytest.raises(ConfigurationError, match="AGENT_VECTOR_BACKEND=opensearch"):
        build_vectors(Settings(vector_backend="opensearch", vector_endpoint="https://x.aoss.amazonaws.com"))
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
