"""SQL for merchants and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.core.db import Connection, Record


async def insert_merchant(
    conn: Connection,
    *,
    id: str,
    name: str,
    email: str | None,
    country: str,
    default_currency: str,
    platform_admin: bool,
    created_at: datetime,
) -> Record:
    row: Record = await conn.fetchrow(
        """
        INSERT INTO merchants (id, name, email, country, default_currency, platform_admin,
                               created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
        """,
        id,
        name,
        email,
        country,
        default_currency,
        platform_admin,
        created_at,
    )
    return row


async def insert_key(
    conn: Connection,
    *,
    id: str,
    merchant_id: str,
    kind: str,
    livemode: bool,
    key_hash: str,
    plaintext: str | None,
    display: str,
    name: str | None,
    permissions: dict[str, str],
    created_at: datetime,
) -> Record:
    row: Record = await conn.fetchrow(
        """
        INSERT INTO api_keys (id, merchant_id, kind, livemode, key_hash, plaintext, display,
                              name, permissions, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *
        """,
        id,
        merchant_id,
        kind,
        livemode,
        key_hash,
        plaintext,
        display,
        name,
        permissions,
        created_at,
    )
    return row


async def get_merchant(conn: Connection, merchant_id: str) -> Record | None:
    row: Record | None = await conn.fetchrow("SELECT * FROM merchants WHERE id = $1", merchant_id)
    return row


async def list_merchants(conn: Connection) -> list[Record]:
    rows: list[Record] = await conn.fetch("SELECT * FROM merchants ORDER BY id")
    return rows


async def find_merchant_by_name(conn: Connection, name: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM merchants WHERE name = $1 ORDER BY id LIMIT 1", name
    )
    return row


async def list_keys(conn: Connection, merchant_id: str) -> list[Record]:
    rows: list[Record] = await conn.fetch(
        "SELECT * FROM api_keys WHERE merchant_id = $1 ORDER BY id", merchant_id
    )
    return rows


async def key_for_hash(conn: Connection, key_hash: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        """
        SELECT k.id, k.merchant_id, k.kind, k.livemode, k.permissions, k.display, k.expires_at,
               m.platform_admin
        FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
        WHERE k.key_hash = $1
        """,
        key_hash,
    )
    return row


async def expire_keys(
    conn: Connection,
    merchant_id: str,
    kind: str,
    livemode: bool,
    expires_at: datetime,
    except_id: str,
) -> list[str]:
    """Set an expiry on the live keys of one kind and mode, except the new one."""
    rows = await conn.fetch(
        """
        UPDATE api_keys SET expires_at = $4
        WHERE merchant_id = $1 AND kind = $2 AND livemode = $3 AND id <> $5
          AND (expires_at IS NULL OR expires_at > $4)
        RETURNING id
        """,
        merchant_id,
        kind,
        livemode,
        expires_at,
        except_id,
    )
    return [r["id"] for r in rows]


def as_dict(row: Record) -> dict[str, Any]:
    return dict(row.items())
