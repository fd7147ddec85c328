"""Purslane's wire format ↔ Kassa's types. Amounts are ``{"currency_code": "EUR", "value":
"42.50"}`` in the currency's own precision; an order is ``CREATED`` (waiting for the buyer),
``APPROVED``, ``COMPLETED`` (captured) or ``CANCELLED``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kassa.connectors.amounts import to_decimal_string
from kassa.connectors.base import MethodOutcome, MethodRequest, MethodResult

CURRENCIES = frozenset({"eur", "usd", "gbp", "jpy"})
# The buyer's funding instrument was declined at capture.
DECLINED = "payment_method_provider_decline"
# The buyer cancelled on Purslane's page.
CANCELED = "payment_intent_payment_attempt_failed"


def amount(value: int, currency: str) -> dict[str, str]:
    return {"currency_code": currency.upper(), "value": to_decimal_string(value, currency)}


def order_body(request: MethodRequest) -> dict[str, Any]:
    """``POST /v1/orders``."""
    return {
        "intent": "CAPTURE",
        "reference_id": request.reference,
        "amount": amount(request.amount, request.currency),
        "return_url": request.return_url,
        "cancel_url": request.cancel_url,
    }


def approve_link(order: Mapping[str, Any]) -> str | None:
    links = order.get("links")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, Mapping) and link.get("rel") == "approve":
            href = link.get("href")
            return href if isinstance(href, str) else None
    return None


def payer(order: Mapping[str, Any]) -> dict[str, str | None]:
    """What ``payment_method_details.paypal`` shows of the buyer and the capture."""
    who = order.get("payer")
    who = who if isinstance(who, Mapping) else {}
    capture = order.get("capture")
    capture = capture if isinstance(capture, Mapping) else {}
    return {
        "payer_email": _str(who.get("email_address")),
        "payer_id": _str(who.get("payer_id")),
        "transaction_id": _str(capture.get("id")),
    }


def order_result(order: Mapping[str, Any]) -> MethodResult:
    """An order's state in Kassa's terms."""
    status = order.get("status")
    psp = _str(order.get("id"))
    if status == "CREATED":
        return MethodResult(MethodOutcome.REQUIRES_ACTION, psp, redirect_url=approve_link(order))
    if status == "APPROVED":
        return MethodResult(MethodOutcome.AUTHORIZED, psp, details=payer(order))
    if status == "COMPLETED":
        capture = order.get("capture")
        capture_id = capture.get("id") if isinstance(capture, Mapping) else None
        return MethodResult(
            MethodOutcome.CAPTURED,
            psp,
            capture_reference=_str(capture_id),
            details=payer(order),
        )
    return MethodResult(
        MethodOutcome.DECLINED,
        psp,
        failure_code=CANCELED,
        message="The customer cancelled the payment on the wallet's page.",
        psp_code=str(status),
    )


def read_error(data: Any) -> tuple[str | None, str | None]:
    """``{"name", "message", "details": [{"issue", "description"}]}``: the issue is the code."""
    if not isinstance(data, Mapping):
        return None, None
    details = data.get("details")
    if isinstance(details, list) and details and isinstance(details[0], Mapping):
        return _str(details[0].get("issue")), None
    return _str(data.get("name")), None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
