"""Beltrane's "silent post" notifications: one form-encoded event per request, signed in
``X-Beltrane-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``. Any 2xx
acknowledges; ``NOTIFICATIONID`` is the deduplication key. A timestamp outside the tolerance
is refused, so a captured notification cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import date
from urllib.parse import parse_qsl

from kassa.connectors.acquirer_b.mapper import parse_amount, parse_time
from kassa.connectors.base import (
    EventKind,
    InvalidNotification,
    PspEvent,
    Rejected,
    WebhookAck,
    WebhookBatch,
)

SIGNATURE_HEADER = "x-beltrane-signature"
ACK = WebhookAck(200, b"OK", "text/plain")

EVENT_KINDS = {
    "SALE": EventKind.CAPTURE,  # a sale is its own capture
    "CAPTURE": EventKind.CAPTURE,
    "CREDIT": EventKind.REFUND,
    "VOID": EventKind.CANCEL,
    "DISPUTE_OPENED": EventKind.CHARGEBACK_OPENED,
    "DISPUTE_WON": EventKind.CHARGEBACK_WON,
    "DISPUTE_LOST": EventKind.CHARGEBACK_LOST,
    "SETTLEMENT_REPORT": EventKind.SETTLEMENT,
}
_DISPUTES = frozenset(
    {EventKind.CHARGEBACK_OPENED, EventKind.CHARGEBACK_WON, EventKind.CHARGEBACK_LOST}
)
# Beltrane's dispute REASON values are Stripe's reasons in capitals.
STRIPE_DISPUTE_REASONS = frozenset(
    {
        "bank_cannot_process", "credit_not_processed", "customer_initiated", "duplicate",
        "fraudulent", "general", "incorrect_account_details", "insufficient_funds",
        "product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized",
    }
)  # fmt: skip


def verify(body: bytes, header: str | None, secret: str, now: float, tolerance_s: float) -> None:
    """Raise ``InvalidNotification`` unless ``header`` signs ``body`` recently enough."""
    if not header:
        raise InvalidNotification("acquirer_b: no signature header")
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v.strip() for k, v in parts if k.strip() == "t"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()):
        raise InvalidNotification("acquirer_b: malformed signature header")
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"." + body, hashlib.sha256)
    digest = expected.hexdigest()
    if not any(k.strip() == "v1" and hmac.compare_digest(v.strip(), digest) for k, v in parts):
        raise InvalidNotification("acquirer_b: signature does not verify")
    if abs(now - int(stamps[0])) > tolerance_s:
        raise InvalidNotification("acquirer_b: signature timestamp outside the tolerance")


def parse(
    body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float
) -> WebhookBatch:
    """Verify one silent post and return its event (none for an unknown ``EVENT``)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    verify(body, lowered.get(SIGNATURE_HEADER), secret, now, tolerance_s)
    try:
        fields = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidNotification("acquirer_b: body is not form-encoded") from exc
    event = _event(fields)
    return WebhookBatch((event,) if event is not None else (), ACK)


def _event(fields: Mapping[str, str]) -> PspEvent | None:
    kind = EVENT_KINDS.get(fields.get("EVENT", ""))
    event_id = fields.get("NOTIFICATIONID")
    if kind is None or not event_id:
        return None
    currency = fields.get("CURRENCY") or None
    try:
        amount = parse_amount(fields.get("AMT"), currency) if currency else None
    except Rejected as exc:
        raise InvalidNotification(f"acquirer_b: unreadable AMT in {event_id}") from exc
    psp = fields.get("PNREF") or ""
    payment = fields.get("ORIGID") or psp
    success = fields.get("RESULT", "0") == "0"
    reason = None if success else fields.get("RESPMSG") or None
    due_by = None
    settlement_date = None
    if kind in _DISPUTES:
        psp = fields.get("DISPUTEID", "")
        raw_reason = fields.get("REASON", "").lower()
        reason = raw_reason if raw_reason in STRIPE_DISPUTE_REASONS else "general"
        due_by = parse_time(fields.get("DUEDATE"))
    elif kind is EventKind.SETTLEMENT:
        psp = fields.get("BATCHID", "")
        payment = ""
        settlement_date = _date(fields.get("REPORTDATE"))
    return PspEvent(
        event_id=event_id,
        kind=kind,
        success=success,
        psp_reference=psp,
        payment_psp_reference=payment or None,
        reference=fields.get("CUSTREF") or None,
        # A sale's capture is the sale itself: our reference is the payment's.
        operation_reference=fields.get("CUSTREF") if fields.get("EVENT") == "SALE" else None,
        amount=amount,
        currency=currency.lower() if currency else None,
        reason=reason,
        occurred_at=parse_time(fields.get("TRANSTIME")),
        dispute_due_by=due_by,
        settlement_date=settlement_date,
    )


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
