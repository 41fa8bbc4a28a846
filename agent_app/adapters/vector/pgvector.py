"""Vector memory in PostgreSQL with the pgvector extension (``AGENT_VECTOR_BACKEND=pgvector``).

Uses the same database as the task store. ``init`` runs ``CREATE EXTENSION IF NOT EXISTS vector``
and creates the table and an HNSW cosine index; vectors travel as pgvector text literals, so no
extra Python package is needed.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from ...core.embedding import DIMENSIONS, embed
from ...core.ports import BackendUnavailable


def _literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{v:.6f}" for v in vector) + "]"


class PgVectorMemory:
    def __init__(self, url: str, table: str = "agent_memory") -> None:
        if not url.startswith("postgresql"):
            raise ValueError("AGENT_VECTOR_BACKEND=pgvector needs a PostgreSQL AGENT_DATABASE_URL")
        self.engine = create_async_engine(url, pool_pre_ping=True)
        self.table = table

    async def init(self) -> None:
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            await conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {self.table} (id text PRIMARY KEY, text text NOT NULL, "
                f"metadata jsonb NOT NULL DEFAULT '{{}}', embedding vector({DIMENSIONS}) NOT NULL)"
            )
            await conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {self.table}_hnsw ON {self.table} "
                "USING hnsw (embedding vector_cosine_ops)"
            )

    async def add(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    f"INSERT INTO {self.table} (id, text, metadata, embedding) "
                    "VALUES (:id, :text, CAST(:meta AS jsonb), CAST(:emb AS vector)) "
                    "ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, metadata = EXCLUDED.metadata, "
                    "embedding = EXCLUDED.embedding"
                ),
                {"id": doc_id, "text": text, "meta": json.dumps(metadata or {}), "emb": _literal(embed(text))},
            )

    async def search(
        self, query: str, k: int = 3, namespace: str | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        where = "WHERE COALESCE(metadata->>'principal', 'default') = :ns " if namespace is not None else ""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    f"SELECT text, 1 - (embedding <=> CAST(:q AS vector)) AS score, metadata FROM {self.table} "
                    f"{where}ORDER BY embedding <=> CAST(:q AS vector) LIMIT :k"
                ),
                {"q": _literal(embed(query)), "k": max(1, min(k, 20)), "ns": namespace},
            )
            return [(r[0], float(r[1]), r[2] or {}) for r in rows if float(r[1]) > 0.05]

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (OSError, OperationalError, DBAPIError) as exc:
            raise BackendUnavailable(f"pgvector: {exc}") from exc

    async def close(self) -> None:
        await self.engine.dispose()
