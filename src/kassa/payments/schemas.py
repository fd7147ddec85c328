"""Payment intent, charge, refund and balance parameters, and their Stripe objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from kassa.core.http.pagination import Created, ListParams
from kassa.core.http.params import Expand, Metadata, OptionalStr, Params

MAX_AMOUNT = 99_999_999_99


class IntentCreate(Params):
    amount: int = Field(ge=1, le=MAX_AMOUNT)
    currency: str = Field(min_length=3, max_length=3)
    capture_method: Literal["automatic", "automatic_async", "manual"] = "automatic"
    confirmation_method: Literal["automatic", "manual"] = "automatic"
    confirm: bool = False
    customer: OptionalStr = Field(default=None, max_length=255)
    payment_method: OptionalStr = Field(default=None, max_length=255)
    payment_method_types: (
        list[Literal["card", "us_bank_account", "sepa_debit", "paypal", "klarna"]] | None
    ) = None
    description: OptionalStr = Field(default=None, max_length=1000)
    receipt_email: OptionalStr = Field(default=None, max_length=512)
    statement_descriptor: OptionalStr = Field(default=None, max_length=22)
    return_url: OptionalStr = Field(default=None, max_length=2048)
    metadata: Metadata = None
    expand: Expand


class IntentUpdate(Params):
    amount: int | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    capture_method: Literal["automatic", "automatic_async", "manual"] | None = None
    customer: OptionalStr = Field(default=None, max_length=255)
    payment_method: OptionalStr = Field(default=None, max_length=255)
    description: OptionalStr = Field(default=None, max_length=1000)
    receipt_email: OptionalStr = Field(default=None, max_length=512)
    statement_descriptor: OptionalStr = Field(default=None, max_length=22)
    metadata: Metadata = None
    expand: Expand


class IntentConfirm(Params):
    payment_method: OptionalStr = Field(default=None, max_length=255)
    return_url: OptionalStr = Field(default=None, max_length=2048)
    capture_method: Literal["automatic", "automatic_async", "manual"] | None = None
    receipt_email: OptionalStr = Field(default=None, max_length=512)
    expand: Expand


class IntentCapture(Params):
    amount_to_capture: int | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    metadata: Metadata = None
    expand: Expand


class IntentCancel(Params):
    cancellation_reason: (
        Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"] | None
    ) = None
    expand: Expand


class Retrieve(Params):
    expand: Expand
    client_secret: str | None = Field(default=None, max_length=200)


class IntentList(ListParams):
    customer: str | None = Field(default=None, max_length=255)
    created: Created = None


class ChargeList(ListParams):
    customer: str | None = Field(default=None, max_length=255)
    payment_intent: str | None = Field(default=None, max_length=255)
    created: Created = None


class RefundCreate(Params):
    charge: OptionalStr = Field(default=None, max_length=255)
    payment_intent: OptionalStr = Field(default=None, max_length=255)
    amount: int | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    metadata: Metadata = None
    expand: Expand


class RefundList(ListParams):
    charge: str | None = Field(default=None, max_length=255)
    payment_intent: str | None = Field(default=None, max_length=255)
    created: Created = None


class BalanceTransactionList(ListParams):
    type: str | None = Field(default=None, max_length=50)
    source: str | None = Field(default=None, max_length=255)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    created: Created = None


class BalanceRetrieve(Params):
    expand: Expand


def _ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def intent_object(row: Any) -> dict[str, Any]:
    """The ``payment_intent`` object as Stripe's API returns it."""
    return {
        "id": row["id"],
        "object": "payment_intent",
        "amount": row["amount"],
        "amount_capturable": row["amount_capturable"],
        "amount_received": row["amount_received"],
        "capture_method": row["capture_method"],
        "client_secret": row["client_secret"],
        "confirmation_method": row["confirmation_method"],
        "created": _ts(row["created_at"]),
        "currency": row["currency"],
        "customer": row["customer_id"],
        "description": row["description"],
        "last_payment_error": row["last_payment_error"],
        "latest_charge": row["latest_charge"],
        "livemode": row["livemode"],
        "metadata": row["metadata"],
        "next_action": row["next_action"],
        "payment_method": row["payment_method_id"],
        "payment_method_types": row["payment_method_types"] or ["card"],
        "receipt_email": row["receipt_email"],
        "statement_descriptor": row["statement_descriptor"],
        "status": row["status"],
        "cancellation_reason": row["cancellation_reason"],
        "canceled_at": _ts(row["canceled_at"]),
    }


def charge_object(row: Any) -> dict[str, Any]:
    """The ``charge`` object: one attempt at the PSP."""
    captured = row["captured"]
    return {
        "id": row["id"],
        "object": "charge",
        "amount": row["amount"],
        "amount_captured": row["amount_captured"],
        "amount_refunded": row["amount_refunded"],
        "balance_transaction": row["balance_transaction"],
        "captured": captured,
        "created": _ts(row["created_at"]),
        "currency": row["currency"],
        "customer": row["customer_id"],
        "description": row["description"],
        "disputed": False,
        "failure_code": row["failure_code"],
        "failure_message": row["failure_message"],
        "livemode": row["livemode"],
        "metadata": row["metadata"],
        "outcome": _outcome(row),
        "paid": row["status"] == "succeeded",
        "payment_intent": row["intent_id"],
        "payment_method": row["payment_method_id"],
        "payment_method_details": _method_details(row["payment_method_details"]),
        "refunded": captured and row["amount_refunded"] == row["amount_captured"],
        "status": row["status"],
        "routing": row["routing"],
    }


def _method_details(details: dict[str, Any]) -> dict[str, Any]:
    # A card's details are stored bare; other types' (bank debits, wallet, BNPL) are stored
    # in Stripe's shape already, ``{"type": t, t: {...}}``.
    if "type" in details:
        return details
    return {"type": "card", "card": details}


def _outcome(row: Any) -> dict[str, Any] | None:
    if row["status"] == "pending":
        return None
    if row["status"] == "succeeded":
        return {
            "type": "authorized",
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
        }
    return {
        "type": "issuer_declined",
        "network_status": "declined_by_network",
        "reason": row["decline_code"],
        "risk_level": "normal",
        "seller_message": "The bank did not return any further details with this decline.",
    }


def refund_object(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "refund",
        "amount": row["amount"],
        "balance_transaction": row["balance_transaction"],
        "charge": row["charge_id"],
        "created": _ts(row["created_at"]),
        "currency": row["currency"],
        "failure_reason": row["failure_reason"],
        "metadata": row["metadata"],
        "payment_intent": row["intent_id"],
        "reason": row["reason"],
        "status": row["status"],
    }


def balance_transaction_object(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "balance_transaction",
        "amount": row["amount"],
        "available_on": _ts(row["available_on"]),
        "created": _ts(row["created_at"]),
        "currency": row["currency"],
        "description": row["description"],
        "fee": row["fee"],
        "fee_details": row["fee_details"],
        "net": row["net"],
        "reporting_category": row["reporting_category"],
        "source": row["source_id"],
        "status": row["status"],
        "type": row["type"],
    }
