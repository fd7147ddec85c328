"""Beltrane's words for things: RESULT codes, host codes, event names, CSV columns."""

from __future__ import annotations

from kassa.sandbox.cards import Outcome
from kassa.sandbox.httpserver import Response
from kassa.sandbox.payments import (
    AUTHORISATION_CLOSED,
    DISPUTED,
    EXCEEDS_AUTHORISED,
    EXCEEDS_CAPTURED,
    FULLY_CAPTURED,
    NOT_AUTHORISED,
)

FORM = "application/x-www-form-urlencoded"

# Outcome -> (RESULT, RESPMSG, HOSTCODE)
DECLINES: dict[Outcome, tuple[int, str, str]] = {
    Outcome.GENERIC_DECLINE: (12, "Declined", "05"),
    Outcome.INSUFFICIENT_FUNDS: (50, "Insufficient funds available in account", "51"),
    Outcome.LOST_CARD: (12, "Declined: lost card", "41"),
    Outcome.STOLEN_CARD: (12, "Declined: stolen card", "43"),
    Outcome.EXPIRED_CARD: (24, "Invalid expiration date: card expired", "54"),
    Outcome.INCORRECT_CVC: (114, "Card security code mismatch", "N7"),
    Outcome.PROCESSING_ERROR: (
        104,
        "Timeout waiting for processor response. Try your transaction again",
        "91",
    ),
    Outcome.INVALID_NUMBER: (23, "Invalid account number", "14"),
    Outcome.UNSUPPORTED_BRAND: (25, "Invalid host mapping: card type not supported", ""),
    Outcome.AUTHENTICATION_REQUIRED: (160, "3-D Secure authentication required", ""),
    Outcome.AUTHENTICATION_FAILED: (161, "3-D Secure authentication failed", ""),
}

# Why a capture, credit or void failed, in Beltrane's words.
FAILURES = {
    NOT_AUTHORISED: "transaction is not an open authorization",
    AUTHORISATION_CLOSED: "authorization already closed",
    EXCEEDS_AUTHORISED: "amount exceeds the remaining authorized amount",
    EXCEEDS_CAPTURED: "amount exceeds the captured amount not yet credited",
    DISPUTED: "transaction is under chargeback",
    FULLY_CAPTURED: "authorization already fully captured",
}
FAILURE_RESULTS = {"capture": (111, "Capture error"), "refund": (105, "Credit error"),
                   "cancel": (108, "Void error")}  # fmt: skip
EVENTS = {"capture": "CAPTURE", "refund": "CREDIT", "cancel": "VOID"}
DISPUTE_EVENTS = {"needs_response": "DISPUTE_OPENED", "won": "DISPUTE_WON", "lost": "DISPUTE_LOST"}
CARD_TYPES = {"visa": "0", "mastercard": "1", "discover": "2", "amex": "3", "diners": "4",
              "jcb": "5", "unionpay": "6"}  # fmt: skip
SETTLEMENT_COLUMNS = [
    "SettlementDate", "BatchId", "PNREF", "OrigPNREF", "CustRef", "TransType", "CardType",
    "Currency", "Amount", "Fee", "NetAmount",
]  # fmt: skip


def reply(result: int, message: str, **fields: str) -> Response:
    """Answer with RESULT, RESPMSG and further name-value pairs (always HTTP 200)."""
    return Response.form({"RESULT": str(result), "RESPMSG": message, **fields})
