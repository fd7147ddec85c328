"""Arvona Checkout's wire format ↔ Kassa's types: JSON bodies, result and refusal codes.

Arvona's amounts are ``{"value": <minor units>, "currency": "EUR"}``: its minor units are ISO
4217's, which agree with the CLDR exponents Kassa uses for every currency Arvona accepts, so
values pass through unchanged (JPY 1050 is ¥1050, KWD 1050 is 1.050 KD)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kassa.connectors.amounts import exponent
from kassa.connectors.base import (
    AuthorizeOutcome,
    AuthorizeRequest,
    AuthorizeResult,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
    OutcomeUnknown,
    PaymentState,
    StatusResult,
)

Codes = tuple[str, str | None]  # Stripe's (failure_code, decline_code)

GENERIC: Codes = ("card_declined", "generic_decline")

# refusalReasonCode → Stripe's codes (docs/connectors.md has the table).
REFUSALS: dict[str, Codes] = {
    "2": GENERIC,  # Refused
    "4": ("processing_error", None),  # Acquirer Error (retryable)
    "5": GENERIC,  # Blocked Card; the issuer's raw code says lost or stolen
    "6": ("expired_card", None),  # Expired Card
    "7": ("card_declined", "invalid_amount"),  # Invalid Amount
    "8": ("incorrect_number", None),  # Invalid Card Number
    "11": ("payment_intent_authentication_failure", None),  # 3D Not Authenticated
    "12": ("card_declined", "insufficient_funds"),  # Not enough balance
    "20": ("card_declined", "fraudulent"),  # FRAUD
    "24": ("incorrect_cvc", None),  # CVC Declined
}

# The issuer's own response code (ISO 8583, the part of ``refusalReasonRaw`` before " : "),
# where it says more than Arvona's reason: "Blocked Card" is lost or stolen.
ISSUER_CODES: dict[str, Codes] = {
    "41": ("card_declined", "lost_card"),
    "43": ("card_declined", "stolen_card"),
}

# Validation errors (HTTP 422 ``errorCode``) that are really about the card: Stripe reports
# them as card errors, like a decline, not as a broken request.
CARD_ERRORS: dict[str, Codes] = {
    "101": ("incorrect_number", None),  # Invalid card number (Luhn)
    "905": ("card_declined", "card_not_supported"),  # Payment details are not supported
}

_ACTION_RESULTS = frozenset({"RedirectShopper", "ChallengeShopper", "IdentifyShopper"})
_DECLINED_RESULTS = frozenset({"Refused", "Error", "Cancelled"})


def amount(value: int, currency: str) -> dict[str, Any]:
    """Kassa's minor units as Arvona's amount object."""
    exponent(currency)  # an unknown currency is refused here, before anything is sent
    return {"value": value, "currency": currency.upper()}


def read_amount(data: Any) -> tuple[int | None, str | None]:
    """Arvona's amount object as (minor units, lower-case currency)."""
    if not isinstance(data, Mapping):
        return None, None
    value, currency = data.get("value"), data.get("currency")
    if isinstance(value, bool) or not isinstance(value, int) or not isinstance(currency, str):
        return None, None
    return value, currency.lower()


def authorize_body(request: AuthorizeRequest, merchant_account: str) -> dict[str, Any]:
    """``POST /v1/payments``. No ``captureDelayHours`` means manual capture; ``0`` a sale."""
    card = request.card
    method: dict[str, Any] = {
        "type": "scheme",
        "number": card.number,
        "expiryMonth": f"{card.exp_month:02d}",
        "expiryYear": f"{card.exp_year:04d}",
    }
    if card.cvc:
        method["cvc"] = card.cvc
    if card.holder_name:
        method["holderName"] = card.holder_name
    body: dict[str, Any] = {
        "amount": amount(request.amount, request.currency),
        "reference": request.reference,
        "merchantAccount": merchant_account,
        "paymentMethod": method,
        "shopperInteraction": "ContAuth" if request.off_session else "Ecommerce",
    }
    if request.capture:
        body["captureDelayHours"] = 0
    if request.return_url:
        body["returnUrl"] = request.return_url
    return body


def details_body(psp_reference: str | None, token: str, merchant_account: str) -> dict[str, Any]:
    """``POST /v1/payments/details``: the 3-D Secure result the shopper came back with."""
    body: dict[str, Any] = {
        "merchantAccount": merchant_account,
        "details": {"threeDSResult": token},
    }
    if psp_reference:
        body["pspReference"] = psp_reference
    return body


def modification_body(
    request: ModificationRequest, merchant_account: str, *, with_amount: bool
) -> dict[str, Any]:
    """Captures and refunds name an amount; a cancel releases whatever is left."""
    body: dict[str, Any] = {"merchantAccount": merchant_account, "reference": request.reference}
    if with_amount:
        body["amount"] = amount(request.amount, request.currency)
    return body


def refusal_codes(reason_code: Any, raw: Any) -> Codes:
    """Stripe's (failure_code, decline_code) for a refusal."""
    issuer = str(raw).split(":", 1)[0].strip() if raw else ""
    if issuer in ISSUER_CODES:
        return ISSUER_CODES[issuer]
    return REFUSALS.get(str(reason_code), GENERIC)


def card_error(error_code: str | None, message: str | None) -> AuthorizeResult | None:
    """A 422 about the card, as the decline Stripe would report; None for other errors."""
    codes = CARD_ERRORS.get(error_code or "")
    if codes is None:
        return None
    return AuthorizeResult(
        AuthorizeOutcome.DECLINED,
        None,
        failure_code=codes[0],
        decline_code=codes[1],
        message=message,
        psp_code=error_code,
    )


def authorize_result(data: Mapping[str, Any], capture: bool) -> AuthorizeResult:
    """An authorisation (or 3-D Secure details) answer. ``Pending``/``Received`` mean Arvona
    has not decided yet: the outcome is unknown until an inquiry says otherwise."""
    result = data.get("resultCode")
    psp = _str(data.get("pspReference"))
    if result == "Authorised":
        outcome = AuthorizeOutcome.CAPTURED if capture else AuthorizeOutcome.AUTHORIZED
        return AuthorizeResult(outcome, psp)
    if result in _DECLINED_RESULTS:
        extra = data.get("additionalData")
        raw = extra.get("refusalReasonRaw") if isinstance(extra, Mapping) else None
        failure, decline = refusal_codes(data.get("refusalReasonCode"), raw)
        return AuthorizeResult(
            AuthorizeOutcome.DECLINED,
            psp,
            decline_code=decline,
            failure_code=failure,
            message=_str(data.get("refusalReason")),
            psp_code=_str(data.get("refusalReasonCode")) or str(result),
        )
    if result in _ACTION_RESULTS:
        action = data.get("action")
        url = action.get("url") if isinstance(action, Mapping) else None
        return AuthorizeResult(
            AuthorizeOutcome.REQUIRES_ACTION, psp, redirect_url=_str(url), psp_code=str(result)
        )
    raise OutcomeUnknown(f"acquirer_a: authorisation result {result!r} is not final")


def modification_result(data: Mapping[str, Any]) -> ModificationResult:
    """Arvona only acknowledges modifications; the decision comes by notification."""
    if data.get("status") != "received":
        raise OutcomeUnknown(f"acquirer_a: unexpected modification answer {data.get('status')!r}")
    return ModificationResult(ModificationOutcome.PENDING, _str(data.get("pspReference")))


def status_result(payments: list[Any]) -> StatusResult:
    """An inquiry by our reference: the latest payment Arvona holds under it, if any."""
    found = [p for p in payments if isinstance(p, Mapping)]
    if not found:
        return StatusResult(PaymentState.NOT_FOUND)
    data = found[-1]
    psp = _str(data.get("pspReference"))
    value, currency = read_amount(data.get("amount"))
    captured, refunded = _int(data.get("capturedAmount")), _int(data.get("refundedAmount"))
    common: dict[str, Any] = {"psp_reference": psp, "amount": value, "currency": currency}
    result = data.get("resultCode")
    if result == "Authorised":
        state = PaymentState.CAPTURED if captured > 0 else PaymentState.AUTHORIZED
        return StatusResult(state, amount_captured=captured, amount_refunded=refunded, **common)
    if result == "Cancelled":
        return StatusResult(PaymentState.VOIDED, amount_captured=captured, **common)
    if result in _DECLINED_RESULTS:
        extra = data.get("additionalData")
        raw = extra.get("refusalReasonRaw") if isinstance(extra, Mapping) else None
        failure, decline = refusal_codes(data.get("refusalReasonCode"), raw)
        return StatusResult(
            PaymentState.DECLINED, failure_code=failure, decline_code=decline, **common
        )
    if result in _ACTION_RESULTS:
        return StatusResult(PaymentState.REQUIRES_ACTION, **common)
    return StatusResult(PaymentState.PENDING, **common)


def parse_time(value: Any) -> datetime | None:
    """Arvona's ISO-8601 timestamps (``2026-01-01T12:00:00Z``) as aware datetimes."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
