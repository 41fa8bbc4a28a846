"""The wiring suite reuses the app suite's real servers (redis-server, PostgreSQL, moto, callback
receiver): one definition of each, started once per session."""

from __future__ import annotations

from tests.app.conftest import moto_server, postgres_server, receiver, redis_server

__all__ = ["moto_server", "postgres_server", "receiver", "redis_server"]
