"""Purslane's notifications: one JSON event per request, ``{"id": "WH-…", "event_type",
"create_time", "resource"}``, signed in ``Purslane-Signature: t=…,v1=…``; any 2xx
acknowledges; the event id is the deduplication key.

``CHECKOUT.ORDER.APPROVED`` (the buyer approved: capture even if they never come back to the
return page), ``PAYMENT.CAPTURE.COMPLETED`` and ``PAYMENT.CAPTURE.DENIED`` become events;
refunds are answered synchronously, so their notifications are acknowledged and skipped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kassa.connectors.bank.mapper import parse_time
from kassa.connectors.base import EventKind, PspEvent, WebhookAck, WebhookBatch
from kassa.connectors.jsonapi import header, verify_signed
from kassa.connectors.wallet.mapper import DECLINED

SIGNATURE_HEADER = "purslane-signature"
ACK = WebhookAck(200, b"", "text/plain")


def parse(
    body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float
) -> WebhookBatch:
    """Verify one notification and return its event (none for a type payments ignore)."""
    data = verify_signed(
        "wallet", body, header(headers, SIGNATURE_HEADER), secret, now, tolerance_s
    )
    event = _event(data)
    return WebhookBatch((event,) if event is not None else (), ACK)


def _event(data: Mapping[str, Any]) -> PspEvent | None:
    event_id, kind_name = data.get("id"), data.get("event_type")
    resource = data.get("resource")
    if not isinstance(event_id, str) or not isinstance(resource, Mapping):
        return None
    when = parse_time(data.get("create_time"))
    if kind_name in ("CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.DENIED"):
        order_id = str(resource.get("id", ""))
        approved = kind_name == "CHECKOUT.ORDER.APPROVED"
        return PspEvent(
            event_id=event_id,
            kind=EventKind.APPROVED if approved else EventKind.DECLINED,
            success=approved,
            psp_reference=order_id,
            payment_psp_reference=order_id,
            reference=_str(resource.get("reference_id")),
            reason=None if approved else DECLINED,
            occurred_at=when,
        )
    if kind_name == "PAYMENT.CAPTURE.COMPLETED":
        return PspEvent(
            event_id=event_id,
            kind=EventKind.CAPTURE,
            success=True,
            psp_reference=str(resource.get("id", "")),
            payment_psp_reference=_str(resource.get("order_id")),
            occurred_at=when,
        )
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
