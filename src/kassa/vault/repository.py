"""SQL for payment methods. Every query is scoped by merchant (and mode where a client asks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.core.db import Connection, Record
from kassa.core.http.pagination import ListParams, fetch_page


async def insert(
    conn: Connection,
    *,
    merchant_id: str,
    id: str,
    livemode: bool,
    created_at: datetime,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    fingerprint: str,
    funding: str,
    country: str | None,
    pan: bytes,
    pan_key: bytes,
    billing_details: bytes | None,
    billing_key: bytes | None,
    kek_id: str,
    cvc_check: str | None,
    allow_redisplay: str,
    customer_id: str | None,
    metadata: dict[str, str],
) -> Record:
    row: Record = await conn.fetchrow(
        """
        INSERT INTO payment_methods (merchant_id, id, livemode, created_at, brand, last4,
                                     exp_month, exp_year, fingerprint, funding, country, pan,
                                     pan_key, billing_details, billing_key, kek_id, cvc_check,
                                     allow_redisplay, customer_id, metadata)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                $19, $20)
        RETURNING *
        """,
        merchant_id,
        id,
        livemode,
        created_at,
        brand,
        last4,
        exp_month,
        exp_year,
        fingerprint,
        funding,
        country,
        pan,
        pan_key,
        billing_details,
        billing_key,
        kek_id,
        cvc_check,
        allow_redisplay,
        customer_id,
        metadata,
    )
    return row


async def insert_method(
    conn: Connection,
    *,
    merchant_id: str,
    id: str,
    livemode: bool,
    created_at: datetime,
    type: str,
    details: dict[str, Any],
    fingerprint: str | None,
    sealed: bytes | None,
    sealed_key: bytes | None,
    billing_details: bytes | None,
    billing_key: bytes | None,
    kek_id: str,
    allow_redisplay: str,
    metadata: dict[str, str],
) -> Record:
    """A payment method other than a card; a bank account's number (or IBAN) is ``sealed``,
    stored where a card's number is."""
    row: Record = await conn.fetchrow(
        """
        INSERT INTO payment_methods (merchant_id, id, livemode, created_at, type, details,
                                     fingerprint, pan, pan_key, billing_details, billing_key,
                                     kek_id, allow_redisplay, metadata)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        RETURNING *
        """,
        merchant_id,
        id,
        livemode,
        created_at,
        type,
        details,
        fingerprint,
        sealed,
        sealed_key,
        billing_details,
        billing_key,
        kek_id,
        allow_redisplay,
        metadata,
    )
    return row


async def get(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    pm_id: str,
    *,
    for_update: bool = False,
) -> Record | None:
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM payment_methods WHERE merchant_id = $1 AND id = $2 AND livemode = $3"
        # NO KEY UPDATE: vault writes never change a key, so there is no need to block the KEY
        # SHARE lock that a customer's default_payment_method foreign key check takes.
        + (" FOR NO KEY UPDATE" if for_update else ""),
        merchant_id,
        pm_id,
        livemode,
    )
    return row


async def update_details(
    conn: Connection,
    merchant_id: str,
    pm_id: str,
    *,
    exp_month: int,
    exp_year: int,
    billing_details: bytes | None,
    billing_key: bytes | None,
    pan_key: bytes | None,
    kek_id: str,
    allow_redisplay: str,
    metadata: dict[str, str],
) -> Record:
    row: Record = await conn.fetchrow(
        """
        UPDATE payment_methods
        SET exp_month = $3, exp_year = $4, billing_details = $5, billing_key = $6, pan_key = $7,
            kek_id = $8, allow_redisplay = $9, metadata = $10
        WHERE merchant_id = $1 AND id = $2 RETURNING *
        """,
        merchant_id,
        pm_id,
        exp_month,
        exp_year,
        billing_details,
        billing_key,
        pan_key,
        kek_id,
        allow_redisplay,
        metadata,
    )
    return row


async def set_customer(
    conn: Connection,
    merchant_id: str,
    pm_id: str,
    customer_id: str | None,
    detached_at: datetime | None,
) -> Record:
    row: Record = await conn.fetchrow(
        """
        UPDATE payment_methods SET customer_id = $3, detached_at = $4
        WHERE merchant_id = $1 AND id = $2 RETURNING *
        """,
        merchant_id,
        pm_id,
        customer_id,
        detached_at,
    )
    return row


async def set_checks(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    pm_id: str,
    *,
    cvc_check: str | None,
    address_line1_check: str | None,
    address_postal_code_check: str | None,
) -> bool:
    """Record verification results; a None leaves that check as it was."""
    result: str = await conn.execute(
        """
        UPDATE payment_methods
        SET cvc_check = coalesce($4, cvc_check),
            address_line1_check = coalesce($5, address_line1_check),
            address_postal_code_check = coalesce($6, address_postal_code_check)
        WHERE merchant_id = $1 AND id = $2 AND livemode = $3
        """,
        merchant_id,
        pm_id,
        livemode,
        cvc_check,
        address_line1_check,
        address_postal_code_check,
    )
    return result != "UPDATE 0"


async def list_page(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    page: ListParams,
    *,
    customer_id: str | None,
    allow_redisplay: str | None = None,
    type: str | None = None,
) -> list[Record]:
    return await fetch_page(
        conn, "payment_methods", page,
        {"merchant_id": merchant_id, "livemode": livemode, "customer_id": customer_id,
         "allow_redisplay": allow_redisplay, "type": type},
    )  # fmt: skip


# --- KEK rotation ---------------------------------------------------------------------------


async def merchants_with_keys_not_under(conn: Connection, kek_id: str) -> list[str]:
    """Merchants owning at least one row wrapped by a KEK other than ``kek_id``."""
    rows = await conn.fetch(
        "SELECT DISTINCT merchant_id FROM payment_methods WHERE kek_id <> $1 ORDER BY 1", kek_id
    )
    return [r["merchant_id"] for r in rows]


async def count_by_kek(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT kek_id, count(*) AS n FROM payment_methods GROUP BY kek_id")
    return {r["kek_id"]: r["n"] for r in rows}


async def lock_batch_wrapped_by(
    conn: Connection, merchant_id: str, kek_ids: list[str], limit: int
) -> list[Record]:
    """Up to ``limit`` of one merchant's rows wrapped by one of ``kek_ids``, locked."""
    rows: list[Record] = await conn.fetch(
        """
        SELECT id, pan_key, billing_key FROM payment_methods
        WHERE merchant_id = $1 AND kek_id = ANY($2::text[])
        ORDER BY id LIMIT $3 FOR NO KEY UPDATE
        """,
        merchant_id,
        kek_ids,
        limit,
    )
    return rows


async def rewrap(
    conn: Connection,
    merchant_id: str,
    ids: list[str],
    pan_keys: list[bytes | None],
    billing_keys: list[bytes | None],
    kek_id: str,
) -> None:
    """Store re-wrapped data keys for many of one merchant's rows in one statement."""
    await conn.execute(
        """
        UPDATE payment_methods AS p
        SET pan_key = k.pan_key, billing_key = k.billing_key, kek_id = $5
        FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS k (id, pan_key, billing_key)
        WHERE p.merchant_id = $1 AND p.id = k.id
        """,
        merchant_id,
        ids,
        pan_keys,
        billing_keys,
        kek_id,
    )
