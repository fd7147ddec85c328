"""Deferro's notifications: one JSON event per request, ``{"id", "type", "created", "data":
{"checkout": …}}``, signed in ``Deferro-Signature: t=…,v1=…``; any 2xx acknowledges; the
event id is the deduplication key.

``checkout.authorized`` / ``checkout.declined`` (the customer's decision: finish the payment
even if they never come back), ``checkout.captured``, ``checkout.canceled`` and
``settlement.paid`` become events; refunds are answered synchronously and skipped here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kassa.connectors.base import EventKind, PspEvent, WebhookAck, WebhookBatch
from kassa.connectors.bnpl.mapper import DECLINED
from kassa.connectors.jsonapi import header, verify_signed

SIGNATURE_HEADER = "deferro-signature"
ACK = WebhookAck(200, b"", "text/plain")

EVENT_KINDS = {
    "checkout.authorized": EventKind.APPROVED,
    "checkout.declined": EventKind.DECLINED,
    "checkout.captured": EventKind.CAPTURE,
    "checkout.canceled": EventKind.CANCEL,
    "settlement.paid": EventKind.SETTLEMENT,
}


def parse(
    body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float
) -> WebhookBatch:
    """Verify one notification and return its event (none for a type payments ignore)."""
    data = verify_signed("bnpl", body, header(headers, SIGNATURE_HEADER), secret, now, tolerance_s)
    kind = EVENT_KINDS.get(str(data.get("type")))
    payload = data.get("data")
    checkout = payload.get("checkout") if isinstance(payload, Mapping) else None
    event_id = data.get("id")
    if kind is None or not isinstance(checkout, Mapping) or not isinstance(event_id, str):
        return WebhookBatch((), ACK)
    checkout_id = str(checkout.get("id", ""))
    settlement = checkout.get("settlement")
    psp = checkout_id
    amount = checkout.get("amount")
    if kind is EventKind.SETTLEMENT and isinstance(settlement, Mapping):
        psp = str(settlement.get("id", checkout_id))
        amount = settlement.get("net")
    created = data.get("created")
    reference = checkout.get("reference")
    event = PspEvent(
        event_id=event_id,
        kind=kind,
        success=kind is not EventKind.DECLINED,
        psp_reference=psp,
        payment_psp_reference=checkout_id or None,
        reference=reference if isinstance(reference, str) else None,
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=str(checkout.get("currency", "")).lower() or None,
        reason=DECLINED if kind is EventKind.DECLINED else None,
        occurred_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
    )
    return WebhookBatch((event,), ACK)
