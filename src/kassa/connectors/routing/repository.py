"""SQL for merchant routing rules; takes the connection it is given."""

from __future__ import annotations

from typing import Any

from kassa.core.db import Connection, Record
from kassa.core.http.pagination import ListParams, fetch_page

_COLUMNS = (
    "merchant_id", "id", "livemode", "created_at", "priority", "description", "currencies",
    "card_brands", "card_countries", "min_amount", "max_amount", "payment_method_types",
    "connector", "connectors", "split",
)  # fmt: skip


async def insert(conn: Connection, values: dict[str, Any]) -> Record:
    placeholders = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
    row: Record = await conn.fetchrow(
        f"INSERT INTO routing_rules ({', '.join(_COLUMNS)}) VALUES ({placeholders}) RETURNING *",
        *(values.get(c) for c in _COLUMNS),
    )
    return row


async def count(conn: Connection, merchant_id: str, livemode: bool) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM routing_rules WHERE merchant_id = $1 AND livemode = $2",
        merchant_id,
        livemode,
    )
    return n


async def get(conn: Connection, merchant_id: str, livemode: bool, rule_id: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM routing_rules WHERE merchant_id = $1 AND id = $2 AND livemode = $3",
        merchant_id,
        rule_id,
        livemode,
    )
    return row


async def update(
    conn: Connection, merchant_id: str, livemode: bool, rule_id: str, values: dict[str, Any]
) -> Record | None:
    """Replace the rule's mutable columns (``values`` names every one)."""
    names = list(values)
    sets = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, start=4))
    row: Record | None = await conn.fetchrow(
        f"UPDATE routing_rules SET {sets} WHERE merchant_id = $1 AND id = $2 AND livemode = $3 "
        "RETURNING *",
        merchant_id,
        rule_id,
        livemode,
        *values.values(),
    )
    return row


async def delete(conn: Connection, merchant_id: str, livemode: bool, rule_id: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM routing_rules WHERE merchant_id = $1 AND id = $2 AND livemode = $3 "
        "RETURNING id",
        merchant_id,
        rule_id,
        livemode,
    )
    return deleted is not None


async def list_page(
    conn: Connection, merchant_id: str, livemode: bool, page: ListParams
) -> list[Record]:
    return await fetch_page(
        conn, "routing_rules", page, {"merchant_id": merchant_id, "livemode": livemode}
    )


async def in_priority_order(conn: Connection, merchant_id: str, livemode: bool) -> list[Record]:
    """Every rule of the merchant and mode, in the order routing evaluates them."""
    rows: list[Record] = await conn.fetch(
        "SELECT * FROM routing_rules WHERE merchant_id = $1 AND livemode = $2 "
        "ORDER BY priority, id",
        merchant_id,
        livemode,
    )
    return rows
