"""Alembic environment: migrations are plain SQL, run through psycopg (which, unlike asyncpg's
prepared statements, takes multi-statement scripts). Each domain owns its revision files and
`kassa migrate` runs `upgrade heads`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine


def _url() -> str:
    url = context.config.attributes.get("dsn") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run migrations through `kassa migrate`")
    return str(url).replace("postgresql://", "postgresql+psycopg://", 1)


engine = create_engine(_url())
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
