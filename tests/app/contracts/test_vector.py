"""VectorMemory contract: in-process, and pgvector on the throwaway PostgreSQL when the extension
is installed there (the skip reason says what to install; set AGENT_TEST_PGVECTOR=1 to make its
absence a failure, as CI should once postgresql-15-pgvector is installed)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.exc import DBAPIError

from agent_app.adapters.vector.memory import MemoryVectors
from agent_app.adapters.vector.pgvector import PgVectorMemory
from agent_app.core.ports import VectorMemory

INSTALL = "pgvector extension missing: apt-get install postgresql-15-pgvector (PGDG apt repository)"


@pytest.fixture(params=["memory", "pgvector"])
async def memory(request: pytest.FixtureRequest) -> AsyncIterator[VectorMemory]:
    if request.param == "memory":
        yield MemoryVectors()
        return
    pg = request.getfixturevalue("postgres_server")
    store = PgVectorMemory(pg.url)
    try:
        await store.init()
    except DBAPIError as exc:
        await store.close()
        if os.environ.get("AGENT_TEST_PGVECTOR") == "1":
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
