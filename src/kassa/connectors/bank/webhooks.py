"""Cindral Bank's notifications: one JSON event per request, ``{"id": "evt_…", "type",
"created", "data": <debit>}``, signed in ``Cindral-Signature: t=…,v1=…``; any 2xx
acknowledges; the event id is the deduplication key. ``debit.settled`` and
``debit.returned`` drive payments; ``payout.paid`` and ``payout.failed`` about a refund's
credit transfer (its reference is the refund id, ``re_…``) are refund events; other payouts
are acknowledged and skipped."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kassa.connectors.bank.mapper import failure_code, parse_time
from kassa.connectors.base import EventKind, PspEvent, WebhookAck, WebhookBatch
from kassa.connectors.jsonapi import header, verify_signed

SIGNATURE_HEADER = "cindral-signature"
ACK = WebhookAck(200, b"", "text/plain")

EVENT_KINDS = {"debit.settled": EventKind.DEBIT_SETTLED, "debit.returned": EventKind.DEBIT_RETURNED}
PAYOUT_TYPES = {"payout.paid": True, "payout.failed": False}
# Kassa's refund ids: a credit transfer under such a reference is a debit's refund.
REFUND_PREFIX = "re_"


def parse(
    body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float
) -> WebhookBatch:
    """Verify one notification and return its event (none for a type payments ignore)."""
    data = verify_signed("bank", body, header(headers, SIGNATURE_HEADER), secret, now, tolerance_s)
    if str(data.get("type")) in PAYOUT_TYPES:
        return _payout(data)
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


def _payout(data: Mapping[str, object]) -> WebhookBatch:
    """A refund's credit transfer arrived (``payout.paid``) or came back (``payout.failed``
    with the bank's ``failure_code``)."""
    payout = data.get("data")
    event_id = data.get("id")
    if not isinstance(payout, Mapping) or not isinstance(event_id, str):
        return WebhookBatch((), ACK)
    reference = payout.get("reference")
    if not isinstance(reference, str) or not reference.startswith(REFUND_PREFIX):
        return WebhookBatch((), ACK)
    success = PAYOUT_TYPES[str(data.get("type"))]
    code = payout.get("failure_code")
    created = data.get("created")
    event = PspEvent(
        event_id=event_id,
        kind=EventKind.REFUND,
        success=success,
        psp_reference=str(payout.get("id", "")),
        operation_reference=reference,
        amount=payout.get("amount") if isinstance(payout.get("amount"), int) else None,
        currency=str(payout.get("currency", "")).lower() or None,
        reason=None if success else (code if isinstance(code, str) else "credit_failed"),
        occurred_at=(
            datetime.fromtimestamp(created, UTC)
            if isinstance(created, int)
            else parse_time(payout.get("arrived_at"))
        ),
    )
    return WebhookBatch((event,), ACK)
