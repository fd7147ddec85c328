"""PSP notifications: verified by the connector, stored once in the inbox (deduplicated by the
PSP's event id), acknowledged, then applied by a job through the same state changes as the API
— so a duplicate or a late, out-of-order delivery changes nothing twice."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from enum import Enum
from typing import Any

from kassa.connectors.base import EventKind, WebhookAck
from kassa.core import clock, jobs
from kassa.core.db import Connection
from kassa.payments import repository
from kassa.payments.service import async_methods, attempts
from kassa.payments.service.context import Origin, Payments
from kassa.payments.service.refund_outcomes import refund_outcome


def _jsonable(event: Any) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(event).items()}


async def receive(p: Payments, connector: str, body: bytes, headers: dict[str, str]) -> WebhookAck:
    """Verify a notification request (the connector raises on a bad signature), store its
    events once each with a processing job in the same transaction, and return the answer
    the PSP needs. Moves no money by itself."""
    batch = p.connectors.get(connector).parse_webhook(body, headers)
    rows = [(e.event_id, e.kind.value, _jsonable(e)) for e in batch.events]
    async with p.db.transaction() as conn:
        new = await repository.inbox_insert(conn, connector, rows, clock.now())
        if new:
            await jobs.defer(conn, "payments:process_psp_events", {}, queueing_lock="psp-inbox")
    return batch.ack


async def process_inbox(p: Payments, limit: int = 1000) -> int:
    """Apply stored notifications, one per transaction (each touches one merchant's rows);
    returns how many were processed."""
    done = 0
    while done < limit:
        async with p.db.transaction() as conn:
            rows = await repository.inbox_take(conn, 1)
            if not rows:
                break
            row = rows[0]
            outcome = await _apply(conn, row["connector"], row["kind"], row["event"])
            await repository.inbox_done(
                conn, row["connector"], row["event_id"], outcome, clock.now()
            )
        done += 1
    return done


async def _apply(conn: Connection, connector: str, kind: str, event: dict[str, Any]) -> str:
    if kind in async_methods.EVENT_KINDS:
        # Bank debits settling or returned; shoppers' decisions at a wallet or BNPL provider.
        return await async_methods.apply_event(conn, kind, event)
    if kind == EventKind.AUTHORISATION:
        return await _authorisation(conn, event)
    if kind == EventKind.REFUND:
        return await _refund(conn, event)
    if kind == EventKind.CAPTURE and not event["success"]:
        # We booked the capture when the PSP accepted it; a refusal now needs a person.
        return f"capture refused by the PSP: {event.get('reason')}; needs review"
    return "recorded"


async def _authorisation(conn: Connection, event: dict[str, Any]) -> str:
    reference = event.get("reference")
    charge = await repository.find_by_id(conn, "charges", reference) if reference else None
    if charge is None:
        return "unknown attempt"
    if charge["status"] != "pending":
        return "already settled"
    # The PSP's answer to an attempt whose own answer was lost: ask it properly (outside this
    # transaction) rather than trusting a notification's summary.
    await jobs.defer(
        conn,
        "payments:resolve_charge",
        {
            "merchant_id": charge["merchant_id"],
            "livemode": charge["livemode"],
            "charge_id": charge["id"],
        },
        queueing_lock=f"resolve:{charge['id']}:webhook",
        lock=attempts.resolver_lock(charge["id"]),
    )
    return "status inquiry scheduled"


async def _refund(conn: Connection, event: dict[str, Any]) -> str:
    reference = event.get("operation_reference")
    refund = await repository.find_by_id(conn, "refunds", reference) if reference else None
    if refund is None:
        return "unknown refund"
    origin = Origin(refund["merchant_id"], refund["livemode"], "psp_webhook")
    return await refund_outcome(conn, origin, refund["id"], event["success"], event.get("reason"))
