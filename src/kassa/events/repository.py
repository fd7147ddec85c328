"""SQL for events, the outbox queues, webhook endpoints, deliveries and their attempt log.

Every query takes the connection it is given; services own the transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kassa.core.db import Connection, Record
from kassa.core.http.pagination import ListParams, RangeFilter, fetch_page

WEBHOOKS_CONSUMER = "webhooks"

# Deliveries still owed to an endpoint: what Stripe calls the event's ``pending_webhooks``.
_PENDING_WEBHOOKS = """
    (SELECT count(*) FROM webhook_deliveries wd
     WHERE wd.merchant_id = e.merchant_id AND wd.event_id = e.id
       AND wd.status NOT IN ('succeeded', 'canceled'))::int AS pending_webhooks
"""


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event to insert: what differs between the events of one change."""

    id: str
    type: str
    created_at: datetime
    object_id: str | None
    data: dict[str, Any]


# --- events and the outbox -------------------------------------------------------------------


async def insert(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
    events: Sequence[EventRow],
) -> None:
    """Events (in order) and one outbox row per event and registered consumer, in one
    statement (one round trip on the payment path, however many events a change makes)."""
    await conn.execute(
        """
        WITH e AS (
            INSERT INTO events (merchant_id, id, livemode, type, api_version, created_at,
                                object_id, data, request_id, idempotency_key)
            SELECT $1, u.id, $2, u.type, $3, u.created_at, u.object_id, u.data, $4, $5
            FROM unnest($6::text[], $7::text[], $8::timestamptz[], $9::text[], $10::jsonb[])
                 AS u(id, type, created_at, object_id, data)
            RETURNING merchant_id, id
        )
        INSERT INTO event_outbox (consumer, merchant_id, event_id)
        SELECT c.name, e.merchant_id, e.id FROM e CROSS JOIN event_consumers c
        """,
        merchant_id,
        livemode,
        api_version,
        request_id,
        idempotency_key,
        [e.id for e in events],
        [e.type for e in events],
        [e.created_at for e in events],
        [e.object_id for e in events],
        [e.data for e in events],
    )


async def get(conn: Connection, merchant_id: str, livemode: bool, event_id: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        f"""
        SELECT e.*, {_PENDING_WEBHOOKS} FROM events e
        WHERE e.merchant_id = $1 AND e.id = $2 AND e.livemode = $3
        """,
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
        f"""
        SELECT e.*, {_PENDING_WEBHOOKS}
        FROM (SELECT * FROM events WHERE {where} ORDER BY {order} LIMIT {limit}) e
        ORDER BY {order}
        """,
        *args,
    )
    return rows


async def delete_older_than(conn: Connection, before: datetime) -> int:
    result: str = await conn.execute("DELETE FROM events WHERE created_at < $1", before)
    return int(result.split()[-1])


async def delete_deliveries_older_than(conn: Connection, before: datetime) -> int:
    """Finished deliveries and attempt log entries past the retention; pending ones stay."""
    await conn.execute("DELETE FROM webhook_delivery_attempts WHERE created_at < $1", before)
    result: str = await conn.execute(
        "DELETE FROM webhook_deliveries WHERE created_at < $1 AND status <> 'pending'", before
    )
    # Outbox rows whose event is gone can never be published.
    await conn.execute(
        """
        DELETE FROM event_outbox o WHERE NOT EXISTS (
            SELECT 1 FROM events e WHERE e.merchant_id = o.merchant_id AND e.id = o.event_id)
        """
    )
    return int(result.split()[-1])


async def register_consumer(conn: Connection, name: str, created_at: datetime) -> bool:
    """Add an outbox consumer; True when it is new."""
    added: bool | None = await conn.fetchval(
        """
        INSERT INTO event_consumers (name, created_at) VALUES ($1, $2)
        ON CONFLICT (name) DO NOTHING RETURNING true
        """,
        name,
        created_at,
    )
    return bool(added)


async def backfill_consumer(conn: Connection, name: str) -> int:
    """Queue every retained event for a new consumer, oldest first."""
    result: str = await conn.execute(
        """
        INSERT INTO event_outbox (consumer, merchant_id, event_id)
        SELECT $1, merchant_id, id FROM events ORDER BY created_at, id
        """,
        name,
    )
    return int(result.split()[-1])


async def unregister_consumer(conn: Connection, name: str) -> None:
    await conn.execute("DELETE FROM event_consumers WHERE name = $1", name)
    await conn.execute("DELETE FROM event_outbox WHERE consumer = $1", name)


async def relax_durability(conn: Connection) -> None:
    """Commit this transaction without waiting for the WAL flush. Only for bookkeeping that is
    safe to lose in a crash (PostgreSQL then loses it whole, as if it never committed): a lost
    dispatch is dispatched again, a lost claim is claimed again, a lost outcome is sent again,
    all within at-least-once delivery."""
    await conn.execute("SET LOCAL synchronous_commit = off")


async def take_for_dispatch(conn: Connection, limit: int) -> list[Record]:
    """Remove up to ``limit`` events from the webhooks queue (skipping rows another
    dispatcher holds) and pair each with the enabled endpoints subscribed to it; an event no
    endpoint wants comes back once with a null ``endpoint_id``."""
    rows: list[Record] = await conn.fetch(
        """
        WITH batch AS (
            DELETE FROM event_outbox o
            WHERE o.consumer = $1 AND o.seq IN (
                SELECT seq FROM event_outbox WHERE consumer = $1
                ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING o.merchant_id, o.event_id
        )
        SELECT ev.merchant_id, ev.id AS event_id, ev.livemode, ev.type, we.id AS endpoint_id
        FROM batch b
        JOIN events ev ON ev.merchant_id = b.merchant_id AND ev.id = b.event_id
        LEFT JOIN LATERAL (
            SELECT w.id FROM webhook_endpoints w
            WHERE w.merchant_id = ev.merchant_id AND w.livemode = ev.livemode
              AND w.status = 'enabled' AND w.deleted_at IS NULL
              AND ('*' = ANY(w.enabled_events) OR ev.type = ANY(w.enabled_events))
        ) we ON true
        """,
        WEBHOOKS_CONSUMER,
        limit,
    )
    return rows


async def insert_deliveries(conn: Connection, deliveries: list[dict[str, Any]]) -> int:
    """New pending deliveries (``merchant_id, id, endpoint_id, event_id, livemode, event_type,
    created_at``), due at once; an existing (event, endpoint) pair is left alone."""
    result: str = await conn.execute(
        """
        INSERT INTO webhook_deliveries (merchant_id, id, endpoint_id, event_id, livemode,
                                        event_type, status, retry_from, next_attempt_at,
                                        created_at)
        SELECT d.merchant_id, d.id, d.endpoint_id, d.event_id, d.livemode, d.event_type,
               'pending', d.created_at, d.created_at, d.created_at
        FROM jsonb_to_recordset($1::jsonb) AS d(
            merchant_id text, id text, endpoint_id text, event_id text, livemode boolean,
            event_type text, created_at timestamptz)
        ON CONFLICT (merchant_id, event_id, endpoint_id) DO NOTHING
        """,
        deliveries,
    )
    return int(result.split()[-1])


async def take_for_relay(
    conn: Connection, consumer: str, now: datetime, lease_until: datetime, limit: int
) -> list[Record]:
    """Lease up to ``limit`` queued events of a relay consumer, oldest first; rows whose lease
    expired (a relay died while publishing them) are taken again."""
    rows: list[Record] = await conn.fetch(
        """
        WITH b AS (
            SELECT seq FROM event_outbox
            WHERE consumer = $1 AND (lease_until IS NULL OR lease_until <= $2)
            ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED
        ), leased AS (
            UPDATE event_outbox o SET lease_until = $3 FROM b
            WHERE o.consumer = $1 AND o.seq = b.seq
            RETURNING o.seq, o.merchant_id, o.event_id
        )
        SELECT l.seq, e.* FROM leased l
        JOIN events e ON e.merchant_id = l.merchant_id AND e.id = l.event_id
        ORDER BY l.seq
        """,
        consumer,
        now,
        lease_until,
        limit,
    )
    return rows


async def ack_relayed(conn: Connection, consumer: str, seqs: list[int]) -> None:
    await conn.execute(
        "DELETE FROM event_outbox WHERE consumer = $1 AND seq = ANY($2::bigint[])", consumer, seqs
    )


async def outbox_depths(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch(
        """
        SELECT c.name, (SELECT count(*) FROM event_outbox o WHERE o.consumer = c.name) AS n
        FROM event_consumers c
        """
    )
    return {r["name"]: r["n"] for r in rows}


async def delivery_counts(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch(
        """
        SELECT 'pending' AS status, count(*) AS n FROM webhook_deliveries WHERE status = 'pending'
        UNION ALL
        SELECT status, count(*) FROM webhook_deliveries WHERE status IN ('dead', 'parked')
        GROUP BY status
        """
    )
    counts = {"pending": 0, "dead": 0, "parked": 0}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


# --- webhook endpoints -----------------------------------------------------------------------


async def insert_endpoint(
    conn: Connection,
    *,
    merchant_id: str,
    id: str,
    livemode: bool,
    url: str,
    enabled_events: list[str],
    description: str | None,
    metadata: dict[str, str],
    api_version: str | None,
    secrets_key: bytes,
    secrets: bytes,
    created_at: datetime,
) -> Record:
    row: Record = await conn.fetchrow(
        """
        INSERT INTO webhook_endpoints (merchant_id, id, livemode, url, enabled_events,
                                       description, metadata, api_version, status,
                                       secrets_key, secrets, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'enabled', $9, $10, $11) RETURNING *
        """,
        merchant_id,
        id,
        livemode,
        url,
        enabled_events,
        description,
        metadata,
        api_version,
        secrets_key,
        secrets,
        created_at,
    )
    return row


async def count_endpoints(conn: Connection, merchant_id: str, livemode: bool) -> int:
    n: int = await conn.fetchval(
        """
        SELECT count(*) FROM webhook_endpoints
        WHERE merchant_id = $1 AND livemode = $2 AND deleted_at IS NULL
        """,
        merchant_id,
        livemode,
    )
    return n


async def get_endpoint(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    endpoint_id: str,
    *,
    for_update: bool = False,
) -> Record | None:
    row: Record | None = await conn.fetchrow(
        """
        SELECT * FROM webhook_endpoints
        WHERE merchant_id = $1 AND id = $2 AND livemode = $3 AND deleted_at IS NULL
        """
        + (" FOR UPDATE" if for_update else ""),
        merchant_id,
        endpoint_id,
        livemode,
    )
    return row


async def find_endpoint(conn: Connection, endpoint_id: str) -> Record | None:
    """An endpoint by id alone, for operators' commands."""
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL", endpoint_id
    )
    return row


async def update_endpoint(
    conn: Connection,
    merchant_id: str,
    endpoint_id: str,
    *,
    url: str,
    enabled_events: list[str],
    description: str | None,
    metadata: dict[str, str],
    status: str,
    disabled_reason: str | None,
    failing_since: datetime | None,
) -> Record:
    row: Record = await conn.fetchrow(
        """
        UPDATE webhook_endpoints
        SET url = $3, enabled_events = $4, description = $5, metadata = $6, status = $7,
            disabled_reason = $8, failing_since = $9
        WHERE merchant_id = $1 AND id = $2 RETURNING *
        """,
        merchant_id,
        endpoint_id,
        url,
        enabled_events,
        description,
        metadata,
        status,
        disabled_reason,
        failing_since,
    )
    return row


async def update_endpoint_secrets(
    conn: Connection, merchant_id: str, endpoint_id: str, secrets_key: bytes, secrets: bytes
) -> Record:
    row: Record = await conn.fetchrow(
        """
        UPDATE webhook_endpoints SET secrets_key = $3, secrets = $4
        WHERE merchant_id = $1 AND id = $2 RETURNING *
        """,
        merchant_id,
        endpoint_id,
        secrets_key,
        secrets,
    )
    return row


async def mark_endpoint_deleted(
    conn: Connection, merchant_id: str, endpoint_id: str, deleted_at: datetime
) -> None:
    """Soft delete (deliveries keep referring to it) and forget its secrets."""
    await conn.execute(
        """
        UPDATE webhook_endpoints SET deleted_at = $3, status = 'disabled',
               secrets = ''::bytea, secrets_key = ''::bytea
        WHERE merchant_id = $1 AND id = $2
        """,
        merchant_id,
        endpoint_id,
        deleted_at,
    )


async def list_endpoints(
    conn: Connection, merchant_id: str, livemode: bool, page: ListParams
) -> list[Record]:
    return await fetch_page(
        conn, "webhook_endpoints", page, {"merchant_id": merchant_id, "livemode": livemode},
        where=["deleted_at IS NULL"],
    )  # fmt: skip


async def subscribed_endpoints(
    conn: Connection, merchant_id: str, livemode: bool, event_type: str
) -> list[str]:
    rows = await conn.fetch(
        """
        SELECT id FROM webhook_endpoints
        WHERE merchant_id = $1 AND livemode = $2 AND status = 'enabled' AND deleted_at IS NULL
          AND ('*' = ANY(enabled_events) OR $3 = ANY(enabled_events))
        """,
        merchant_id,
        livemode,
        event_type,
    )
    return [r["id"] for r in rows]


async def disable_endpoint(
    conn: Connection, merchant_id: str, endpoint_id: str, reason: str
) -> Record | None:
    """Disable an enabled endpoint; None if it already was (or is gone)."""
    row: Record | None = await conn.fetchrow(
        """
        UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $3
        WHERE merchant_id = $1 AND id = $2 AND status = 'enabled' AND deleted_at IS NULL
        RETURNING *
        """,
        merchant_id,
        endpoint_id,
        reason,
    )
    return row


# --- deliveries ------------------------------------------------------------------------------


async def end_pending_deliveries(
    conn: Connection, merchant_id: str, endpoint_id: str, status: str, reason: str | None
) -> int:
    """Dead-letter (or cancel) an endpoint's pending deliveries; an in-flight attempt's late
    result is then ignored because its lease is gone."""
    result: str = await conn.execute(
        """
        UPDATE webhook_deliveries SET status = $3, dead_reason = $4, lease_until = NULL
        WHERE merchant_id = $1 AND endpoint_id = $2 AND status = 'pending'
        """,
        merchant_id,
        endpoint_id,
        status,
        reason,
    )
    return int(result.split()[-1])


async def begin_claim(conn: Connection) -> None:
    """Start a claim: relaxed durability (as ``relax_durability``) and a lock serialising
    claims for the rest of the transaction, so per-endpoint concurrency limits hold across
    worker processes (claims are one short statement each). One round trip."""
    await conn.execute(
        "SET LOCAL synchronous_commit = off; "
        "SELECT pg_advisory_xact_lock(hashtext('kassa.webhooks.claim'))"
    )


async def claim_due(
    conn: Connection,
    *,
    now: datetime,
    lease_until: datetime,
    per_endpoint: int,
    limit: int,
) -> list[Record]:
    """Lease up to ``limit`` due deliveries, at most ``per_endpoint`` in flight per endpoint,
    endpoints with the oldest due delivery first (one endpoint's backlog cannot starve the
    others). A leased delivery's ``next_attempt_at`` moves to the lease's end, so a worker that
    dies leaves it due again then; finding a lease already set means the previous claim never
    finished, which counts as a crash. Rows carry the endpoint and the event to send."""
    rows: list[Record] = await conn.fetch(
        f"""
        WITH RECURSIVE pending_endpoints AS (
            -- The endpoints that have pending deliveries, found by skipping through the index
            -- (a loose index scan): the cost follows the number of endpoints, not of backlog.
            (SELECT merchant_id, endpoint_id FROM webhook_deliveries
             WHERE status = 'pending' ORDER BY merchant_id, endpoint_id LIMIT 1)
            UNION ALL
            SELECT n.merchant_id, n.endpoint_id FROM pending_endpoints p
            CROSS JOIN LATERAL (
                SELECT merchant_id, endpoint_id FROM webhook_deliveries
                WHERE status = 'pending'
                  AND (merchant_id, endpoint_id) > (p.merchant_id, p.endpoint_id)
                ORDER BY merchant_id, endpoint_id LIMIT 1) n
        ), due_endpoints AS (
            SELECT p.merchant_id, p.endpoint_id, o.oldest FROM pending_endpoints p
            CROSS JOIN LATERAL (
                SELECT min(next_attempt_at) AS oldest FROM webhook_deliveries d
                WHERE d.merchant_id = p.merchant_id AND d.endpoint_id = p.endpoint_id
                  AND d.status = 'pending') o
            WHERE o.oldest <= $1
        ), slots AS (
            SELECT d.merchant_id, d.endpoint_id, d.oldest,
                   $3 - (SELECT count(*) FROM webhook_deliveries f
                         WHERE f.merchant_id = d.merchant_id AND f.endpoint_id = d.endpoint_id
                           AND f.lease_until IS NOT NULL AND f.lease_until > $1) AS free
            FROM due_endpoints d
        ), picked AS (
            SELECT p.merchant_id, p.id, p.endpoint_id, p.event_id
            FROM (SELECT * FROM slots WHERE free > 0 ORDER BY oldest) s
            CROSS JOIN LATERAL (
                SELECT d.merchant_id, d.id, d.endpoint_id, d.event_id FROM webhook_deliveries d
                WHERE d.merchant_id = s.merchant_id AND d.endpoint_id = s.endpoint_id
                  AND d.status = 'pending' AND d.next_attempt_at <= $1
                ORDER BY d.next_attempt_at LIMIT s.free
                FOR UPDATE SKIP LOCKED
            ) p
            LIMIT $4
        )
        UPDATE webhook_deliveries d
        SET lease_until = $2, next_attempt_at = $2,
            crashes = d.crashes + (d.lease_until IS NOT NULL)::int
        FROM picked
        JOIN webhook_endpoints w ON w.merchant_id = picked.merchant_id
                                AND w.id = picked.endpoint_id
        LEFT JOIN events e ON e.merchant_id = picked.merchant_id AND e.id = picked.event_id
        WHERE d.merchant_id = picked.merchant_id AND d.id = picked.id
        RETURNING d.merchant_id, d.id, d.endpoint_id, d.event_id, d.livemode, d.attempt_count,
                  d.round_attempts, d.crashes, d.retry_from, d.created_at, d.lease_until,
                  w.url, w.secrets_key, w.secrets, w.status AS endpoint_status,
                  w.deleted_at IS NOT NULL AS endpoint_deleted,
                  e.id IS NOT NULL AS event_exists, e.type, e.api_version,
                  e.created_at AS event_created_at, e.data, e.request_id, e.idempotency_key,
                  {_PENDING_WEBHOOKS}
        """,
        now,
        lease_until,
        per_endpoint,
        limit,
    )
    return rows


async def record_outcomes(
    conn: Connection, outcomes: list[dict[str, Any]], disable_threshold: datetime
) -> list[Record]:
    """Write a batch of finished deliveries in one statement: each delivery's new state, the
    log entry of each attempt made, and the endpoints' health (any success clears
    ``failing_since``, a failure sets it if unset). Only deliveries still holding the lease they
    were claimed with change: one dead-lettered or re-claimed meanwhile keeps its newer state.

    Returns the enabled endpoints that failed in this batch and have been failing since
    ``disable_threshold`` or longer (to be disabled)."""
    rows: list[Record] = await conn.fetch(
        """
        WITH o AS (
            SELECT * FROM jsonb_to_recordset($1::jsonb) AS o(
                merchant_id text, id text, attempt_id text, endpoint_id text, event_id text,
                livemode boolean, lease_until timestamptz, attempt integer, at timestamptz,
                logged boolean, http boolean, succeeded boolean, status_code integer,
                latency_ms integer, response_body text, error text, status text,
                dead_reason text, next_attempt_at timestamptz, round_attempts integer,
                crashes integer)
        ), upd AS (
            UPDATE webhook_deliveries d
            SET status = o.status, dead_reason = o.dead_reason, attempt_count = o.attempt,
                round_attempts = o.round_attempts, crashes = o.crashes,
                next_attempt_at = o.next_attempt_at, lease_until = NULL,
                last_status_code = o.status_code, last_error = o.error,
                delivered_at = CASE WHEN o.succeeded THEN o.at ELSE d.delivered_at END
            FROM o
            WHERE d.merchant_id = o.merchant_id AND d.id = o.id
              AND d.lease_until = o.lease_until AND d.status = 'pending'
            RETURNING d.merchant_id, d.id
        ), log AS (
            INSERT INTO webhook_delivery_attempts (merchant_id, id, delivery_id, endpoint_id,
                event_id, livemode, attempt, created_at, succeeded, status_code, latency_ms,
                response_body, error)
            SELECT o.merchant_id, o.attempt_id, o.id, o.endpoint_id, o.event_id, o.livemode,
                   o.attempt, o.at, o.succeeded, o.status_code, o.latency_ms, o.response_body,
                   o.error
            FROM o JOIN upd ON upd.merchant_id = o.merchant_id AND upd.id = o.id
            WHERE o.logged
        ), h AS (
            SELECT merchant_id, endpoint_id, bool_or(succeeded) AS ok, min(at) AS first_failure
            FROM o WHERE http GROUP BY merchant_id, endpoint_id
        ), health AS (
            UPDATE webhook_endpoints w
            SET failing_since = CASE WHEN h.ok THEN NULL
                                     ELSE coalesce(w.failing_since, h.first_failure) END
            FROM h
            WHERE w.merchant_id = h.merchant_id AND w.id = h.endpoint_id
              AND (h.ok = (w.failing_since IS NOT NULL))
        )
        SELECT w.merchant_id, w.id FROM webhook_endpoints w
        JOIN h ON w.merchant_id = h.merchant_id AND w.id = h.endpoint_id
        WHERE NOT h.ok AND w.status = 'enabled' AND w.deleted_at IS NULL
          AND coalesce(w.failing_since, h.first_failure) <= $2
        """,
        outcomes,
        disable_threshold,
    )
    return rows


async def list_deliveries(
    conn: Connection,
    merchant_id: str,
    endpoint_id: str,
    page: ListParams,
    *,
    status: str | None,
    event_id: str | None,
) -> list[Record]:
    return await fetch_page(
        conn, "webhook_deliveries", page,
        {"merchant_id": merchant_id, "endpoint_id": endpoint_id, "status": status,
         "event_id": event_id},
    )  # fmt: skip


async def list_attempts(
    conn: Connection,
    merchant_id: str,
    endpoint_id: str,
    page: ListParams,
    *,
    event_id: str | None,
    delivery_id: str | None,
) -> list[Record]:
    return await fetch_page(
        conn, "webhook_delivery_attempts", page,
        {"merchant_id": merchant_id, "endpoint_id": endpoint_id, "event_id": event_id,
         "delivery_id": delivery_id},
    )  # fmt: skip


async def replay_dead(conn: Connection, merchant_id: str, endpoint_id: str, now: datetime) -> int:
    """Put an endpoint's dead letters (and parked poison pills) back in the queue with a fresh
    retry window."""
    result: str = await conn.execute(
        """
        UPDATE webhook_deliveries
        SET status = 'pending', dead_reason = NULL, round_attempts = 0, crashes = 0,
            retry_from = $3, next_attempt_at = $3, lease_until = NULL
        WHERE merchant_id = $1 AND endpoint_id = $2 AND status IN ('dead', 'parked')
        """,
        merchant_id,
        endpoint_id,
        now,
    )
    return int(result.split()[-1])


async def retry_event(conn: Connection, deliveries: list[dict[str, Any]], now: datetime) -> int:
    """Deliver an event again to the given endpoints: new deliveries where there were none,
    existing ones due now with a fresh retry window (an attempt in flight is left to finish)."""
    result: str = await conn.execute(
        """
        INSERT INTO webhook_deliveries (merchant_id, id, endpoint_id, event_id, livemode,
                                        event_type, status, retry_from, next_attempt_at,
                                        created_at)
        SELECT d.merchant_id, d.id, d.endpoint_id, d.event_id, d.livemode, d.event_type,
               'pending', $2, $2, $2
        FROM jsonb_to_recordset($1::jsonb) AS d(
            merchant_id text, id text, endpoint_id text, event_id text, livemode boolean,
            event_type text)
        ON CONFLICT (merchant_id, event_id, endpoint_id) DO UPDATE
        SET status = 'pending', dead_reason = NULL, round_attempts = 0, crashes = 0,
            retry_from = $2, next_attempt_at = $2
        WHERE webhook_deliveries.lease_until IS NULL
        """,
        deliveries,
        now,
    )
    return int(result.split()[-1])
