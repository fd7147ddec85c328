"""Arvona's notifications: JSON batches of up to ten items, each signed on its own with
HMAC-SHA256 (base64, in ``additionalData.hmacSignature``) under the hex-decoded key, over
``pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:
eventCode:success`` (missing fields empty). Only HTTP 200 with ``[accepted]`` acknowledges a
batch; anything else and Arvona sends the whole batch again.

A batch is taken whole or not at all: if any item fails verification nothing is acknowledged,
so the genuine batch keeps coming while a forged or altered one is never acted on."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson

from kassa.connectors.acquirer_a.mapper import parse_time, read_amount
from kassa.connectors.base import (
    EventKind,
    InvalidNotification,
    PspEvent,
    WebhookAck,
    WebhookBatch,
)

ACK = WebhookAck(200, b"[accepted]", "text/plain")

EVENT_KINDS = {
    "AUTHORISATION": EventKind.AUTHORISATION,
    "CAPTURE": EventKind.CAPTURE,
    "REFUND": EventKind.REFUND,
    "CANCELLATION": EventKind.CANCEL,
    "CHARGEBACK": EventKind.CHARGEBACK_OPENED,
    "CHARGEBACK_REVERSED": EventKind.CHARGEBACK_WON,
    "CHARGEBACK_LOST": EventKind.CHARGEBACK_LOST,
    "REPORT_AVAILABLE": EventKind.SETTLEMENT,
}

# Scheme chargeback reason codes → Stripe's dispute reasons (Visa 10.x is fraud, 13.x
# consumer disputes, Mastercard 4837/4863 fraud); anything else is "general".
DISPUTE_REASONS = {
    "10.1": "fraudulent",
    "10.2": "fraudulent",
    "10.3": "fraudulent",
    "10.4": "fraudulent",
    "10.5": "fraudulent",
    "4837": "fraudulent",
    "4863": "fraudulent",
    "13.1": "product_not_received",
    "13.3": "product_unacceptable",
    "13.6": "credit_not_processed",
    "13.7": "subscription_canceled",
    "12.6.1": "duplicate",
}


def signature(item: Mapping[str, Any], hex_key: str) -> str:
    """The base64 HMAC-SHA256 Arvona puts on a notification item."""
    raw = item.get("amount")
    amount: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    fields = (
        item.get("pspReference", ""),
        item.get("originalReference", ""),
        item.get("merchantAccountCode", ""),
        item.get("merchantReference", ""),
        amount.get("value", ""),
        amount.get("currency", ""),
        item.get("eventCode", ""),
        item.get("success", ""),
    )
    message = ":".join(str(f) for f in fields).encode()
    return base64.b64encode(
        hmac.new(bytes.fromhex(hex_key), message, hashlib.sha256).digest()
    ).decode()


def parse(body: bytes, hex_key: str) -> WebhookBatch:
    """Verify every item of a notification batch and return its events (unknown event codes
    are verified, acknowledged and skipped)."""
    try:
        data = orjson.loads(body)
        wrappers = data["notificationItems"]
        items = [w["NotificationRequestItem"] for w in wrappers]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidNotification("acquirer_a: not a notification batch") from exc
    try:
        bytes.fromhex(hex_key)
    except ValueError as exc:
        raise InvalidNotification("acquirer_a: the configured HMAC key is not hex") from exc
    events = []
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidNotification("acquirer_a: a notification item is not an object")
        extra = item.get("additionalData")
        given = extra.get("hmacSignature") if isinstance(extra, Mapping) else None
        if not isinstance(given, str) or not _same(given, signature(item, hex_key)):
            raise InvalidNotification("acquirer_a: notification item signature does not verify")
        event = _event(item, extra if isinstance(extra, Mapping) else {})
        if event is not None:
            events.append(event)
    return WebhookBatch(tuple(events), ACK)


def _same(given: str, expected: str) -> bool:
    try:
        return hmac.compare_digest(
            base64.b64decode(given, validate=True), base64.b64decode(expected)
        )
    except (binascii.Error, ValueError):
        return False


def _event(item: Mapping[str, Any], extra: Mapping[str, Any]) -> PspEvent | None:
    code = item.get("eventCode")
    kind = EVENT_KINDS.get(str(code))
    psp = item.get("pspReference")
    if kind is None or not isinstance(psp, str):
        return None
    original = _str(item.get("originalReference"))
    value, currency = read_amount(item.get("amount"))
    reason = _str(item.get("reason"))
    due_by = None
    settlement_date = None
    if kind in (EventKind.CHARGEBACK_OPENED, EventKind.CHARGEBACK_WON, EventKind.CHARGEBACK_LOST):
        reason = DISPUTE_REASONS.get(str(extra.get("chargebackReasonCode")), "general")
        due_by = parse_time(extra.get("defensePeriodEndsAt"))
    if kind is EventKind.SETTLEMENT:
        settlement_date = _date(extra.get("settlementDate"))
        value = currency = None  # the report's announcement carries a placeholder amount
    return PspEvent(
        # Arvona's documented deduplication key.
        event_id=f"{code}:{psp}",
        kind=kind,
        success=item.get("success") == "true",
        psp_reference=psp,
        payment_psp_reference=psp if kind is EventKind.AUTHORISATION else original,
        reference=_str(item.get("merchantReference")),
        operation_reference=_str(extra.get("modificationReference")),
        amount=value,
        currency=currency,
        reason=reason,
        occurred_at=parse_time(item.get("eventDate")),
        dispute_due_by=due_by,
        settlement_date=settlement_date,
    )


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
