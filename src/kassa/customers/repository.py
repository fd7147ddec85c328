"""SQL for customers. Every query is scoped by merchant and mode."""

from __future__ import annotations

from datetime import datetime

from kassa.core.db import Connection, Record
from kassa.core.http.pagination import ListParams, RangeFilter, fetch_page


async def insert(
    conn: Connection,
    *,
    merchant_id: str,
    id: str,
    livemode: bool,
    created_at: datetime,
    description: str | None,
    metadata: dict[str, str],
    pii: bytes,
    pii_key: bytes,
    email_index: bytes | None,
) -> Record:
    row: Record = await conn.fetchrow(
        """
        INSERT INTO customers (merchant_id, id, livemode, created_at, description, metadata, pii,
                               pii_key, email_index)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *
        """,
        merchant_id,
        id,
        livemode,
        created_at,
        description,
        metadata,
        pii,
        pii_key,
        email_index,
    )
    return row


async def get(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    customer_id: str,
    *,
    for_update: bool = False,
) -> Record | None:
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM customers WHERE merchant_id = $1 AND id = $2 AND livemode = $3"
        + (" FOR UPDATE" if for_update else ""),
        merchant_id,
        customer_id,
        livemode,
    )
    return row


async def update(
    conn: Connection,
    merchant_id: str,
    customer_id: str,
    *,
    description: str | None,
    metadata: dict[str, str],
    pii: bytes,
    pii_key: bytes,
    email_index: bytes | None,
    default_payment_method: str | None,
) -> Record:
    row: Record = await conn.fetchrow(
        """
        UPDATE customers SET description = $3, metadata = $4, pii = $5, pii_key = $6,
                             email_index = $7, default_payment_method = $8
        WHERE merchant_id = $1 AND id = $2 RETURNING *
        """,
        merchant_id,
        customer_id,
        description,
        metadata,
        pii,
        pii_key,
        email_index,
        default_payment_method,
    )
    return row


async def clear_default_payment_method(
    conn: Connection, merchant_id: str, customer_id: str, payment_method_id: str
) -> None:
    # Writes the row even when the default is another payment method: the row lock is the point.
    await conn.execute(
        """
        UPDATE customers SET default_payment_method = NULLIF(default_payment_method, $3)
        WHERE merchant_id = $1 AND id = $2
        """,
        merchant_id,
        customer_id,
        payment_method_id,
    )


async def mark_deleted(
    conn: Connection, merchant_id: str, customer_id: str, deleted_at: datetime
) -> None:
    """Soft-delete and crypto-shred: the row stays (ids are referenced by payments), the
    personal data becomes unreadable."""
    await conn.execute(
        """
        UPDATE customers SET deleted_at = $3, pii = NULL, pii_key = NULL, email_index = NULL
        WHERE merchant_id = $1 AND id = $2
        """,
        merchant_id,
        customer_id,
        deleted_at,
    )


async def list_page(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    page: ListParams,
    *,
    email_index: bytes | None,
    created: RangeFilter | None,
) -> list[Record]:
    return await fetch_page(
        conn, "customers", page,
        {"merchant_id": merchant_id, "livemode": livemode, "email_index": email_index},
        where=["deleted_at IS NULL"], created=created,
    )  # fmt: skip
