"""Cindral Bank's wire format ↔ Kassa's types. Amounts are minor units; currencies upper case;
a debit is ``processing`` until it is ``settled`` or ``returned`` with a rail return code."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kassa.connectors.base import (
    BankAccount,
    MethodOutcome,
    MethodRequest,
    MethodResult,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
    PaymentState,
    Rejected,
    StatusResult,
)

RAILS = {"us_bank_account": "ach", "sepa_debit": "sepa"}
RAIL_CURRENCY = {"ach": "usd", "sepa": "eur"}

# Return codes (NACHA R-codes, SEPA reason codes) → Stripe's bank debit failure codes.
RETURN_CODES = {
    "R01": "insufficient_funds",
    "R02": "account_closed",
    "R03": "no_account",
    "R04": "invalid_account_number",
    "R10": "debit_not_authorized",
    "AM04": "insufficient_funds",
    "AC04": "account_closed",
    "AC01": "invalid_account_number",
    "MD01": "debit_not_authorized",
    "MD06": "debit_not_authorized",
}
GENERIC_RETURN = "bank_account_unusable"


def debit_body(request: MethodRequest) -> dict[str, Any]:
    """``POST /v1/debits``; the account number or IBAN is in it, so it is never logged."""
    account = request.bank_account
    if account is None:
        raise Rejected("bank: a debit needs a bank account")
    rail = RAILS.get(request.payment_method_type)
    if rail is None or rail != account.rail:
        raise Rejected(f"bank: cannot debit a {request.payment_method_type} payment method")
    if request.currency.lower() != RAIL_CURRENCY[rail]:
        raise Rejected(f"bank: {rail} debits move {RAIL_CURRENCY[rail].upper()} only")
    if rail == "ach":
        raw = {"routing_number": account.routing_number, "account_number": account.account_number}
    else:
        raw = {"iban": account.iban}
    return {
        "rail": rail,
        "amount": request.amount,
        "currency": request.currency.upper(),
        "reference": request.reference,
        "description": (request.description or "")[:140],
        "account": raw,
    }


def credit_body(
    request: ModificationRequest,
    account: BankAccount,
    payment_method_type: str,
    description: str | None = None,
) -> dict[str, Any]:
    """``POST /v1/payouts``: a credit transfer to ``account`` (a debit's refund), on the rail
    the debit used; the account number or IBAN is in it, so it is never logged."""
    rail = RAILS.get(payment_method_type)
    if rail is None or rail != account.rail:
        raise Rejected(f"bank: cannot credit a {payment_method_type} payment method")
    if request.currency.lower() != RAIL_CURRENCY[rail]:
        raise Rejected(f"bank: {rail} credits move {RAIL_CURRENCY[rail].upper()} only")
    if rail == "ach":
        raw = {"routing_number": account.routing_number, "account_number": account.account_number}
    else:
        raw = {"iban": account.iban}
    return {
        "rail": rail,
        "amount": request.amount,
        "currency": request.currency.upper(),
        "reference": request.reference,
        "description": (description or "")[:140],
        "account": raw,
    }


def credit_result(data: Mapping[str, Any]) -> ModificationResult:
    """A credit transfer (payout) as the bank shows it: ``in_transit`` → ``PENDING``,
    ``paid`` → ``SUCCEEDED``, ``failed`` → ``FAILED`` with the bank's failure code."""
    status = data.get("status")
    psp = _str(data.get("id"))
    if status == "in_transit":
        return ModificationResult(ModificationOutcome.PENDING, psp)
    if status == "paid":
        return ModificationResult(ModificationOutcome.SUCCEEDED, psp)
    if status == "failed":
        return ModificationResult(
            ModificationOutcome.FAILED, psp, _str(data.get("failure_code")) or "credit_failed"
        )
    raise Rejected(f"bank: unknown payout status {status!r}")


def failure_code(return_code: str | None) -> str:
    """Stripe's failure code for a rail return code."""
    return RETURN_CODES.get(return_code or "", GENERIC_RETURN)


def debit_result(data: Mapping[str, Any]) -> MethodResult:
    """A debit as the bank shows it, in Kassa's terms."""
    status = data.get("status")
    psp = _str(data.get("id"))
    if status == "processing":
        return MethodResult(MethodOutcome.PROCESSING, psp)
    if status == "settled":
        return MethodResult(MethodOutcome.CAPTURED, psp)
    if status == "returned":
        code = _str(data.get("return_code"))
        return MethodResult(
            MethodOutcome.RETURNED,
            psp,
            failure_code=failure_code(code),
            message=_str(data.get("return_reason")),
            psp_code=code,
            returned_after_settlement=data.get("returned_after_settlement") is True,
        )
    raise Rejected(f"bank: unknown debit status {status!r}")


def latest(data: Any) -> Mapping[str, Any] | None:
    """The newest debit (or payout) of a ``GET /v1/debits?reference=`` answer, if any."""
    found = data.get("data") if isinstance(data, Mapping) else None
    debits = [d for d in found if isinstance(d, Mapping)] if isinstance(found, list) else []
    return debits[-1] if debits else None


def status_result(result: MethodResult, data: Mapping[str, Any] | None) -> StatusResult:
    """The card-shaped status answer (``Connector.status``) for a debit."""
    if data is None:
        return StatusResult(PaymentState.NOT_FOUND)
    amount = data.get("amount") if isinstance(data.get("amount"), int) else None
    currency = str(data.get("currency", "")).lower() or None
    common: dict[str, Any] = {
        "psp_reference": result.psp_reference,
        "amount": amount,
        "currency": currency,
    }
    if result.outcome is MethodOutcome.CAPTURED:
        return StatusResult(PaymentState.CAPTURED, amount_captured=amount or 0, **common)
    if result.outcome is MethodOutcome.RETURNED:
        return StatusResult(PaymentState.DECLINED, failure_code=result.failure_code, **common)
    return StatusResult(PaymentState.PENDING, **common)


def read_error(data: Any) -> tuple[str | None, str | None]:
    """``{"error": {"code", "message", "param"}}``."""
    error = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(error, Mapping):
        return None, None
    return _str(error.get("code")), _str(error.get("param"))


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
