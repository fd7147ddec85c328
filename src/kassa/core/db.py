"""The one way to reach PostgreSQL: an asyncpg pool, and ``transaction()``, the one helper
services open transactions with. Repositories take the connection they are given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
import orjson

# asyncpg ships no type information; these aliases name what repositories pass around.
Connection: TypeAlias = asyncpg.Connection
Record: TypeAlias = asyncpg.Record


class KassaConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection whose release costs no round trip.

    asyncpg resets session state (advisory locks, cursors, LISTEN, SET) when a connection goes
    back to the pool, one extra query per request. Kassa never leaves session state behind —
    transaction-scoped ``SET LOCAL`` and ``pg_advisory_xact_lock`` only — so there is nothing
    to reset."""

    def get_reset_query(self) -> str:
        return ""


async def _init_connection(conn: Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


class Database:
    """A connection pool. One per process, created at startup."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, min_size: int = 2, max_size: int = 20) -> Database:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            connection_class=KassaConnection,
            # Server-side prepared statements are cached per connection; the API's queries are
            # a small fixed set, so the cache pays off on every request.
            statement_cache_size=512,
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection for reads outside a transaction (autocommit)."""
        async with self.pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(
        self, isolation: str = "read_committed", *, single_statement: bool = False
    ) -> AsyncIterator[Connection]:
        """Open a transaction: commit when the block ends, roll back if it raises.

        Services call this, never routes or repositories, so every transaction boundary is
        visible in the service that owns the business rule. ``single_statement=True`` says the
        block runs exactly one statement, which PostgreSQL already makes atomic: BEGIN and
        COMMIT are skipped, saving two round trips on hot paths."""
        async with self.pool.acquire() as conn:
            if single_statement:
                yield conn
                return
            async with conn.transaction(isolation=isolation):
                yield conn

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(query, *args)
