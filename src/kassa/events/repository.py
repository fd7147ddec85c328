"""SQL for events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.core.db import Connection, Record
from kassa.core.http.pagination import ListParams, RangeFilter


async def insert(
    conn: Connection,
    *,
    merchant_id: str,
    id: str,
    livemode: bool,
    type: str,
    api_version: str,
    created_at: datetime,
    object_id: str | None,
    data: dict[str, Any],
    request_id: str | None,
    idempotency_key: str | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO events (merchant_id, id, livemode, type, api_version, created_at, object_id,
                            data, request_id, idempotency_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """,
        merchant_id,
        id,
        livemode,
        type,
        api_version,
        created_at,
        object_id,
        data,
        request_id,
        idempotency_key,
    )


async def get(conn: Connection, merchant_id: str, livemode: bool, event_id: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM events WHERE merchant_id = $1 AND id = $2 AND livemode = $3",
        merchant_id,
        event_id,
        livemode,
    )
    return row


async def list_page(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    page: ListParams,
    *,
    types: list[str] | None,
    type_prefix: str | None,
    created: RangeFilter | None,
) -> list[Record]:
    args: list[Any] = [merchant_id, livemode]
    conditions = ["merchant_id = $1", "livemode = $2"]
    if types:
        args.append(types)
        conditions.append(f"type = ANY(${len(args)}::text[])")
    if type_prefix:
        # Event types are [a-z_.] only (validated), so the prefix needs no LIKE escaping.
        args.append(type_prefix + "%")
        conditions.append(f"type LIKE ${len(args)}")
    if created is not None:
        conditions += created.sql("created_at", args)
    page_conditions, order, limit = page.page_sql("id", args)
    where = " AND ".join(conditions + page_conditions)
    rows: list[Record] = await conn.fetch(
        f"SELECT * FROM events WHERE {where} ORDER BY {order} LIMIT {limit}", *args
    )
    return rows


async def delete_older_than(conn: Connection, before: datetime) -> int:
    result: str = await conn.execute("DELETE FROM events WHERE created_at < $1", before)
    return int(result.split()[-1])
