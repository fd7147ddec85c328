"""Deferro's wire format ↔ Kassa's types. Amounts are minor units, currencies upper case; a
checkout is ``pending`` (waiting for the customer), ``authorized``, ``declined``,
``canceled``, ``captured`` or ``settled`` (Deferro paid the merchant)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kassa.connectors.bank.mapper import parse_time
from kassa.connectors.base import MethodOutcome, MethodRequest, MethodResult

CURRENCIES = frozenset({"eur", "usd", "gbp", "sek"})
DECLINED = "payment_method_provider_decline"


def checkout_body(request: MethodRequest) -> dict[str, Any]:
    """``POST /v1/checkouts``."""
    return {
        "amount": request.amount,
        "currency": request.currency.upper(),
        "reference": request.reference,
        "return_url": request.return_url,
        "cancel_url": request.cancel_url,
        "customer": {"email": request.email},
    }


def checkout_result(data: Mapping[str, Any]) -> MethodResult:
    """A checkout's state in Kassa's terms. A captured one says when Deferro pays out: as a
    duration after the capture (both read from Deferro's own clock)."""
    status = data.get("status")
    psp = _str(data.get("id"))
    details = {"payment_method_category": "pay_later"}
    if status == "pending":
        return MethodResult(
            MethodOutcome.REQUIRES_ACTION, psp, redirect_url=_str(data.get("redirect_url"))
        )
    if status == "authorized":
        return MethodResult(MethodOutcome.AUTHORIZED, psp, details=details)
    if status in ("captured", "settled"):
        captured_at = parse_time(data.get("captured_at"))
        due = parse_time(data.get("settlement_due_at"))
        after = due - captured_at if captured_at is not None and due is not None else None
        return MethodResult(MethodOutcome.CAPTURED, psp, settles_after=after, details=details)
    return MethodResult(
        MethodOutcome.DECLINED,
        psp,
        failure_code=DECLINED,
        message=(
            "The customer was declined by the buy now, pay later provider."
            if status == "declined"
            else "The payment was cancelled."
        ),
        psp_code=str(status),
    )


def read_error(data: Any) -> tuple[str | None, str | None]:
    """``{"error": {"code", "message"}}``."""
    error = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(error, Mapping):
        return None, None
    return _str(error.get("code")), None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
