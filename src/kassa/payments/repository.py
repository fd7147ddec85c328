"""SQL for payment intents, charges, refunds, balance transactions and fee plans. Every
statement is scoped by merchant; column names in ``changes`` come from the service, never from
a client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.core.db import Connection, Record
from kassa.core.http.pagination import ListParams, RangeFilter, fetch_page

_TABLES = frozenset({"payment_intents", "charges", "refunds", "balance_transactions"})


async def insert(conn: Connection, table: str, values: dict[str, Any]) -> Record:
    assert table in _TABLES
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row: Record = await conn.fetchrow(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING *", *values.values()
    )
    return row


async def get(
    conn: Connection,
    table: str,
    merchant_id: str,
    livemode: bool,
    object_id: str,
    *,
    for_update: bool = False,
) -> Record | None:
    assert table in _TABLES
    row: Record | None = await conn.fetchrow(
        f"SELECT * FROM {table} WHERE merchant_id = $1 AND id = $2 AND livemode = $3"
        + (" FOR NO KEY UPDATE" if for_update else ""),
        merchant_id,
        object_id,
        livemode,
    )
    return row


async def update(
    conn: Connection, table: str, merchant_id: str, object_id: str, changes: dict[str, Any]
) -> Record:
    assert table in _TABLES
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    row: Record = await conn.fetchrow(
        f"UPDATE {table} SET {sets} WHERE merchant_id = $1 AND id = $2 RETURNING *",
        merchant_id,
        object_id,
        *changes.values(),
    )
    return row


# The audit row of an intent's status change is written by the same statement as the change
# (a data-modifying CTE): one round trip on the payment path, and never one without the other.
_TRANSITION = """
    t AS (
        INSERT INTO payment_intent_transitions
            (merchant_id, intent_id, old_status, new_status, source, request_id, created_at)
        SELECT i.merchant_id, i.id, {old}, i.status, ${source}, ${request}, ${at} FROM i
    )
    SELECT * FROM i
"""


async def insert_intent(
    conn: Connection, values: dict[str, Any], source: str, request_id: str | None, at: datetime
) -> Record:
    """A new intent and its first audit row (from no status to its own)."""
    n = len(values)
    placeholders = ", ".join(f"${i}" for i in range(1, n + 1))
    transition = _TRANSITION.format(old="NULL::text", source=n + 1, request=n + 2, at=n + 3)
    row: Record = await conn.fetchrow(
        f"WITH i AS (INSERT INTO payment_intents ({', '.join(values)}) VALUES ({placeholders})"
        f" RETURNING *), {transition}",
        *values.values(),
        source,
        request_id,
        at,
    )
    return row


async def move_intent(
    conn: Connection,
    merchant_id: str,
    intent_id: str,
    old: str,
    changes: dict[str, Any],
    source: str,
    request_id: str | None,
    at: datetime,
) -> Record:
    """Update an intent (``changes`` include its new ``status``) and append the audit row
    ``old`` → new status."""
    n = len(changes) + 2
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    transition = _TRANSITION.format(old=f"${n + 1}", source=n + 2, request=n + 3, at=n + 4)
    row: Record = await conn.fetchrow(
        f"WITH i AS (UPDATE payment_intents SET {sets} WHERE merchant_id = $1 AND id = $2"
        f" RETURNING *), {transition}",
        merchant_id,
        intent_id,
        *changes.values(),
        old,
        source,
        request_id,
        at,
    )
    return row


async def transitions(conn: Connection, merchant_id: str, intent_id: str) -> list[Record]:
    rows: list[Record] = await conn.fetch(
        "SELECT * FROM payment_intent_transitions WHERE merchant_id = $1 AND intent_id = $2 "
        "ORDER BY seq",
        merchant_id,
        intent_id,
    )
    return rows


async def list_page(
    conn: Connection,
    table: str,
    merchant_id: str,
    livemode: bool,
    page: ListParams,
    filters: dict[str, str | None],
    created: RangeFilter | None,
) -> list[Record]:
    """One page of ``table``, with equality ``filters`` on named columns."""
    assert table in _TABLES
    return await fetch_page(
        conn, table, page, {"merchant_id": merchant_id, "livemode": livemode, **filters},
        created=created,
    )  # fmt: skip


async def fee_plan(conn: Connection, merchant_id: str, currency: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        """
        SELECT percent_bps, fixed, refund_fees FROM fee_plans
        WHERE merchant_id = $1 AND currency IN ($2, '*')
        ORDER BY currency = '*' LIMIT 1
        """,
        merchant_id,
        currency,
    )
    return row


async def set_fee_plan(
    conn: Connection,
    merchant_id: str,
    currency: str,
    percent_bps: int,
    fixed: int,
    refund_fees: bool,
) -> None:
    await conn.execute(
        """
        INSERT INTO fee_plans (merchant_id, currency, percent_bps, fixed, refund_fees)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (merchant_id, currency) DO UPDATE
            SET percent_bps = EXCLUDED.percent_bps, fixed = EXCLUDED.fixed,
                refund_fees = EXCLUDED.refund_fees
        """,
        merchant_id,
        currency,
        percent_bps,
        fixed,
        refund_fees,
    )


async def unresolved_charges(conn: Connection, older_than: datetime, limit: int) -> list[Record]:
    """Attempts still waiting for the PSP's answer (a crash or a lost response)."""
    rows: list[Record] = await conn.fetch(
        # A bank debit on the rail (``processing``) is pending for days by design; its own
        # inquiries (service/async_methods.py) follow it.
        "SELECT merchant_id, livemode, id, payment_method_details->>'type' AS type "
        "FROM charges WHERE status = 'pending' "
        "AND outcome <> 'processing' AND created_at < $1 ORDER BY created_at LIMIT $2",
        older_than,
        limit,
    )
    return rows


async def stale_authorizations(conn: Connection, before: datetime, limit: int) -> list[Record]:
    rows: list[Record] = await conn.fetch(
        "SELECT merchant_id, livemode, id FROM payment_intents WHERE status = 'requires_capture' "
        "AND authorized_at < $1 ORDER BY authorized_at LIMIT $2",
        before,
        limit,
    )
    return rows


async def busy_intents(
    conn: Connection, operations: tuple[str, ...], started_before: datetime, limit: int
) -> list[Record]:
    """Intents still busy with one of ``operations`` that started before ``started_before``:
    a process died between the operation's two transactions."""
    rows: list[Record] = await conn.fetch(
        "SELECT merchant_id, livemode, id, operation FROM payment_intents "
        "WHERE operation IS NOT NULL AND operation = ANY($1::text[]) "
        "AND operation_started_at < $2 ORDER BY operation_started_at LIMIT $3",
        list(operations),
        started_before,
        limit,
    )
    return rows


async def inbox_insert(
    conn: Connection,
    connector: str,
    events: list[tuple[str, str, dict[str, Any]]],
    received_at: datetime,
) -> int:
    """Store notifications once each; returns how many were new."""
    result: str = await conn.execute(
        """
        INSERT INTO psp_inbox (connector, event_id, kind, event, received_at)
        SELECT $1, e.id, e.kind, e.event, $5
        FROM unnest($2::text[], $3::text[], $4::jsonb[]) AS e(id, kind, event)
        ON CONFLICT (connector, event_id) DO NOTHING
        """,
        connector,
        [e[0] for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
        received_at,
    )
    return int(result.split()[-1])


async def inbox_take(conn: Connection, limit: int) -> list[Record]:
    """Unprocessed notifications, oldest first, locked so no other worker takes them."""
    rows: list[Record] = await conn.fetch(
        """
        SELECT connector, event_id, kind, event, attempts FROM psp_inbox
        WHERE processed_at IS NULL ORDER BY received_at LIMIT $1 FOR UPDATE SKIP LOCKED
        """,
        limit,
    )
    return rows


async def inbox_done(
    conn: Connection, connector: str, event_id: str, outcome: str, at: datetime | None
) -> None:
    await conn.execute(
        "UPDATE psp_inbox SET processed_at = $3, outcome = $4, attempts = attempts + 1 "
        "WHERE connector = $1 AND event_id = $2",
        connector,
        event_id,
        at,
        outcome,
    )


async def find_by_id(conn: Connection, table: str, object_id: str) -> Record | None:
    """A charge or refund by its id alone (a PSP notification does not name the merchant)."""
    assert table in ("charges", "refunds")
    row: Record | None = await conn.fetchrow(
        f"SELECT * FROM {table} WHERE id = $1 FOR NO KEY UPDATE", object_id
    )
    return row


async def unanswered_charges(
    conn: Connection, older_than: datetime, lost_before: datetime, limit: int
) -> list[Record]:
    """Attempts a dead process left without any recorded outcome (created before
    ``older_than``), and unknown outcomes past their whole inquiry schedule (created before
    ``lost_before``) that nobody flagged: their inquiry job was lost."""
    rows: list[Record] = await conn.fetch(
        "(SELECT merchant_id, livemode, id, created_at, payment_method_details->>'type' AS type "
        " FROM charges WHERE outcome = 'pending' AND status = 'pending' AND created_at < $1 "
        " ORDER BY created_at LIMIT $3) "
        "UNION ALL "
        "(SELECT merchant_id, livemode, id, created_at, payment_method_details->>'type' AS type "
        " FROM charges "
        " WHERE outcome = 'unknown' AND status = 'pending' AND review_since IS NULL "
        " AND created_at < $2 ORDER BY created_at LIMIT $3)",
        older_than,
        lost_before,
        limit,
    )
    return rows


async def charges_in_review(conn: Connection, limit: int) -> list[Record]:
    """Attempts whose outcome no status inquiry could learn, oldest first."""
    rows: list[Record] = await conn.fetch(
        "SELECT merchant_id, livemode, id, intent_id, connector, amount, currency, created_at, "
        "inquiries, review_since FROM charges WHERE review_since IS NOT NULL "
        "AND status = 'pending' ORDER BY review_since LIMIT $1",
        limit,
    )
    return rows


async def count_in_review(conn: Connection) -> int:
    """How many attempts wait for an operator."""
    n: int = await conn.fetchval(
        "SELECT count(*) FROM charges WHERE review_since IS NOT NULL AND status = 'pending'"
    )
    return n
