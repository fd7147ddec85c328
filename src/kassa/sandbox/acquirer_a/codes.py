"""Arvona's words for things: refusal codes, event codes, result codes, CSV columns, errors."""

from __future__ import annotations

from kassa.sandbox.cards import Outcome
from kassa.sandbox.httpserver import ApiError, Response
from kassa.sandbox.payments import (
    AUTHORISATION_CLOSED,
    AUTHORISED,
    CANCELLED,
    DISPUTED,
    ERROR,
    EXCEEDS_AUTHORISED,
    EXCEEDS_CAPTURED,
    FULLY_CAPTURED,
    NOT_AUTHORISED,
    PENDING_AUTHENTICATION,
    REFUSED,
)

# Outcome -> (refusalReason, refusalReasonCode, raw issuer response)
REFUSALS: dict[Outcome, tuple[str, str, str]] = {
    Outcome.GENERIC_DECLINE: ("Refused", "2", "05 : Do not honor"),
    Outcome.INSUFFICIENT_FUNDS: ("Not enough balance", "12", "51 : Insufficient funds"),
    Outcome.LOST_CARD: ("Blocked Card", "5", "41 : Lost card"),
    Outcome.STOLEN_CARD: ("Blocked Card", "5", "43 : Stolen card"),
    Outcome.EXPIRED_CARD: ("Expired Card", "6", "54 : Expired card"),
    Outcome.INCORRECT_CVC: ("CVC Declined", "24", "N7 : CVV2 failure"),
    Outcome.AUTHENTICATION_FAILED: ("3D Not Authenticated", "11", ""),
    Outcome.PROCESSING_ERROR: ("Acquirer Error", "4", "96 : System malfunction"),
}

MODIFICATION_FAILURES = {
    NOT_AUTHORISED: "Payment is not authorised",
    AUTHORISATION_CLOSED: "Authorisation already closed",
    EXCEEDS_AUTHORISED: "Insufficient authorised amount remaining",
    EXCEEDS_CAPTURED: "Refund amount exceeds the captured amount",
    DISPUTED: "Payment is under chargeback",
    FULLY_CAPTURED: "Payment already fully captured",
}

EVENT_CODES = {"capture": "CAPTURE", "refund": "REFUND", "cancel": "CANCELLATION"}
DISPUTE_EVENTS = {
    "needs_response": "CHARGEBACK",
    "won": "CHARGEBACK_REVERSED",
    "lost": "CHARGEBACK_LOST",
}
RESULT_CODES = {
    AUTHORISED: "Authorised",
    REFUSED: "Refused",
    ERROR: "Error",
    PENDING_AUTHENTICATION: "RedirectShopper",
    CANCELLED: "Cancelled",
}
SETTLEMENT_TYPES = {
    "capture": "Settled",
    "refund": "Refunded",
    "chargeback": "Chargeback",
    "chargeback_reversal": "ChargebackReversed",
}
SETTLEMENT_COLUMNS = [
    "Merchant Account", "Batch Number", "Psp Reference", "Modification Reference",
    "Merchant Reference", "Type", "Booking Date", "Settlement Date", "Payment Method",
    "Currency", "Gross", "Fee", "Net",
]  # fmt: skip


def error(status: int, code: str, message: str, kind: str = "validation") -> ApiError:
    """Return Arvona's error body: status, errorCode, message, errorType."""
    body = {"status": status, "errorCode": code, "message": message, "errorType": kind}
    return ApiError(Response.json(body, status))
