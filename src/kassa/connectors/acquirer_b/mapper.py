"""Beltrane Gateway's wire format ↔ Kassa's types: name-value pairs, numeric ``RESULT`` codes,
``HOSTCODE`` issuer codes, ``TRANSSTATE`` and decimal-string amounts in each currency's own
precision (``AMT=99.06`` EUR, ``AMT=1050`` JPY, ``AMT=1.050`` KWD)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kassa.connectors.amounts import from_decimal_string, to_decimal_string
from kassa.connectors.base import (
    AuthorizeOutcome,
    AuthorizeRequest,
    AuthorizeResult,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
    PaymentState,
    Rejected,
    StatusResult,
)

Codes = tuple[str, str | None]  # Stripe's (failure_code, decline_code)

GENERIC: Codes = ("card_declined", "generic_decline")
APPROVED = "0"
AUTHENTICATION_REQUIRED = "160"

# RESULT of a sale or authorization → Stripe's codes (docs/connectors.md has the table).
DECLINES: dict[str, Codes] = {
    "12": GENERIC,  # Declined; HOSTCODE says why
    "23": ("incorrect_number", None),  # Invalid account number
    "24": ("expired_card", None),  # Invalid or expired expiry date
    "25": ("card_declined", "card_not_supported"),  # Card type not supported
    "50": ("card_declined", "insufficient_funds"),  # Insufficient funds
    "104": ("processing_error", None),  # Processor timeout (retryable)
    "114": ("incorrect_cvc", None),  # Card security code mismatch
    "161": ("payment_intent_authentication_failure", None),  # 3-D Secure failed
}
# A 3-D Secure challenge was needed and there is no way to run one.
NEEDS_AUTHENTICATION: Codes = ("card_declined", "authentication_required")

# HOSTCODE (the issuer's ISO 8583 response) behind RESULT=12.
HOST_CODES: dict[str, Codes] = {
    "05": GENERIC,
    "41": ("card_declined", "lost_card"),
    "43": ("card_declined", "stolen_card"),
    "51": ("card_declined", "insufficient_funds"),
    "54": ("expired_card", None),
}

# RESULTs that say the request itself was wrong (credentials, tender, type, amount, format,
# unknown ORIGID): nothing was done, and resending it unchanged cannot help.
REJECTIONS = frozenset({"1", "2", "3", "4", "7", "19"})

# A follow-up (capture, credit, void) the gateway processed and refused.
MODIFICATION_FAILURES = frozenset({"105", "108", "111"})

TRANSSTATES: dict[str, PaymentState] = {
    "1": PaymentState.DECLINED,
    "3": PaymentState.AUTHORIZED,
    "6": PaymentState.CAPTURED,  # settlement pending
    "8": PaymentState.CAPTURED,  # settled
    "11": PaymentState.VOIDED,
}


def credentials_form(user: str, vendor: str, partner: str, password: str) -> dict[str, str]:
    """The credentials every request carries."""
    return {"USER": user, "VENDOR": vendor, "PARTNER": partner, "PWD": password}


def sale_form(request: AuthorizeRequest, three_ds_result: str | None = None) -> dict[str, str]:
    """``TRXTYPE=S`` (sale) or ``A`` (authorization) with our reference as ``CUSTREF``."""
    card = request.card
    form = {
        "TRXTYPE": "S" if request.capture else "A",
        "TENDER": "C",
        "ACCT": card.number,
        "EXPDATE": f"{card.exp_month:02d}{card.exp_year % 100:02d}",
        "AMT": to_decimal_string(request.amount, request.currency),
        "CURRENCY": request.currency.upper(),
        "CUSTREF": request.reference,
    }
    if card.cvc:
        form["CVV2"] = card.cvc
    if request.description:
        form["COMMENT1"] = request.description[:128]
    if request.off_session:
        form["RECURRING"] = "Y"
    if three_ds_result:
        form["THREEDSRESULT"] = three_ds_result
    return form


def follow_up_form(trxtype: str, request: ModificationRequest) -> dict[str, str]:
    """``D`` (delayed capture), ``C`` (credit) or ``V`` (void) of ``ORIGID``. ``COMMENT1``
    records our operation reference at Beltrane."""
    form = {"TRXTYPE": trxtype, "TENDER": "C", "ORIGID": request.psp_reference}
    form["COMMENT1"] = request.reference[:128]
    if trxtype != "V":
        form["AMT"] = to_decimal_string(request.amount, request.currency)
    if trxtype == "D":
        form["CAPTURECOMPLETE"] = "Y" if request.final_capture else "N"
    return form


def inquiry_form(reference: str) -> dict[str, str]:
    """``TRXTYPE=I`` by our reference: Beltrane answers about the latest transaction."""
    return {"TRXTYPE": "I", "TENDER": "C", "CUSTREF": reference}


def decline_codes(result: str, host_code: str | None) -> Codes:
    """Stripe's (failure_code, decline_code) for a declined sale or authorization."""
    if result == "12":
        return HOST_CODES.get(host_code or "", GENERIC)
    return DECLINES.get(result, GENERIC)


def sale_result(fields: Mapping[str, str], capture: bool) -> AuthorizeResult:
    """A sale/authorization answer. RESULT 160 becomes ``REQUIRES_ACTION`` without a URL:
    the connector then runs 3-D Secure itself."""
    result = fields.get("RESULT", "")
    pnref = fields.get("PNREF") or None
    message = fields.get("RESPMSG") or None
    if result == APPROVED:
        outcome = AuthorizeOutcome.CAPTURED if capture else AuthorizeOutcome.AUTHORIZED
        return AuthorizeResult(outcome, pnref, message=message)
    if result == AUTHENTICATION_REQUIRED:
        return AuthorizeResult(
            AuthorizeOutcome.REQUIRES_ACTION, pnref, message=message, psp_code=result
        )
    if result in REJECTIONS:
        raise Rejected(f"acquirer_b: RESULT={result} {message or ''}".strip(), result)
    failure, decline = decline_codes(result, fields.get("HOSTCODE"))
    return AuthorizeResult(
        AuthorizeOutcome.DECLINED,
        pnref,
        decline_code=decline,
        failure_code=failure,
        message=message,
        psp_code=result,
    )


def modification_result(fields: Mapping[str, str]) -> ModificationResult:
    """Follow-ups are synchronous: approved, or refused with Beltrane's reason."""
    result = fields.get("RESULT", "")
    pnref = fields.get("PNREF") or None
    message = fields.get("RESPMSG") or None
    if result == APPROVED:
        return ModificationResult(ModificationOutcome.SUCCEEDED, pnref, message)
    if result in MODIFICATION_FAILURES:
        return ModificationResult(ModificationOutcome.FAILED, pnref, message)
    raise Rejected(f"acquirer_b: RESULT={result} {message or ''}".strip(), result)


def status_result(fields: Mapping[str, str]) -> StatusResult:
    """An inquiry answer: ``TRANSSTATE`` for the state, ``ORIGRESULT`` for why it failed."""
    result = fields.get("RESULT", "")
    if result == "19":
        return StatusResult(PaymentState.NOT_FOUND)
    if result != APPROVED:
        raise Rejected(f"acquirer_b: inquiry RESULT={result} {fields.get('RESPMSG', '')}", result)
    currency = fields.get("CURRENCY", "USD")
    psp = fields.get("PNREF") or None
    amount = _amount(fields.get("AMT"), currency)
    state = TRANSSTATES.get(fields.get("TRANSSTATE", ""), PaymentState.PENDING)
    if state is PaymentState.DECLINED:
        orig = fields.get("ORIGRESULT", "")
        if orig == AUTHENTICATION_REQUIRED:
            state = PaymentState.REQUIRES_ACTION
            return StatusResult(state, psp, amount=amount, currency=currency.lower())
        # An inquiry does not repeat HOSTCODE, so a RESULT=12 is reported as generic.
        failure, decline = decline_codes(orig, None)
        return StatusResult(
            state,
            psp,
            failure_code=failure,
            decline_code=decline,
            amount=amount,
            currency=currency.lower(),
        )
    return StatusResult(
        state,
        psp,
        amount_captured=_amount(fields.get("CAPTUREDAMT"), currency) or 0,
        amount_refunded=_amount(fields.get("REFUNDEDAMT"), currency) or 0,
        amount=amount,
        currency=currency.lower(),
    )


def parse_amount(value: str | None, currency: str) -> int | None:
    """A decimal ``AMT`` as minor units; None when absent."""
    return _amount(value, currency)


def parse_time(value: str | None) -> datetime | None:
    """``TRANSTIME`` (``2026-01-01 12:00:00``, UTC) or an ISO date-time, as an aware datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _amount(value: str | None, currency: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return from_decimal_string(value, currency)
    except ValueError as exc:
        raise Rejected(f"acquirer_b: unreadable amount {value!r} {currency}") from exc
