"""Cindral Bank's notifications: one JSON event per request, ``{"id": "evt_…", "type",
"created", "data": <debit>}``, signed in ``Cindral-Signature: t=…,v1=…``; any 2xx
acknowledges; the event id is the deduplication key. ``debit.settled`` and
``debit.returned`` drive payments; payout events are acknowledged and skipped."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kassa.connectors.bank.mapper import failure_code, parse_time
from kassa.connectors.base import EventKind, PspEvent, WebhookAck, WebhookBatch
from kassa.connectors.jsonapi import header, verify_signed

SIGNATURE_HEADER = "cindral-signature"
ACK = WebhookAck(200, b"", "text/plain")

EVENT_KINDS = {"debit.settled": EventKind.DEBIT_SETTLED, "debit.returned": EventKind.DEBIT_RETURNED}


def parse(
    body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float
) -> WebhookBatch:
    """Verify one notification and return its event (none for a type payments ignore)."""
    data = verify_signed("bank", body, header(headers, SIGNATURE_HEADER), secret, now, tolerance_s)
    kind = EVENT_KINDS.get(str(data.get("type")))
    debit = data.get("data")
    event_id = data.get("id")
    if kind is None or not isinstance(debit, Mapping) or not isinstance(event_id, str):
        return WebhookBatch((), ACK)
    code = debit.get("return_code") if isinstance(debit.get("return_code"), str) else None
    created = data.get("created")
    returned = kind is EventKind.DEBIT_RETURNED
    event = PspEvent(
        event_id=event_id,
        kind=kind,
        success=not returned,
        psp_reference=str(debit.get("id", "")),
        payment_psp_reference=str(debit.get("id", "")) or None,
        reference=debit.get("reference") if isinstance(debit.get("reference"), str) else None,
        # Stripe's failure code; whether the money had settled already the payments side
        # knows from the charge.
        reason=failure_code(code) if returned else None,
        amount=debit.get("amount") if isinstance(debit.get("amount"), int) else None,
        currency=str(debit.get("currency", "")).lower() or None,
        occurred_at=(
            datetime.fromtimestamp(created, UTC)
            if isinstance(created, int)
            else parse_time(debit.get("settled_at"))
        ),
    )
    return WebhookBatch((event,), ACK)
