"""Writing an intent's status change: the state machine's check, the new row values and the
audit row, always together in the caller's transaction; and the attempt outcomes built on it
(requires action, failed, authorised, captured)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.core import clock
from kassa.core.db import Connection, Record
from kassa.payments import repository
from kassa.payments.errors import CardError
from kassa.payments.schemas import charge_object, intent_object
from kassa.payments.service import money
from kassa.payments.service.context import Origin, emit, emit_all
from kassa.payments.states import IntentStatus, transition

S = IntentStatus

# An intent with no capture, cancel, expiry or attempt in flight: the operation, when it
# started and what its request asked for are set together and cleared together.
IDLE: dict[str, Any] = {"operation": None, "operation_started_at": None, "operation_request": None}


async def locked_charge(conn: Connection, origin: Origin, charge_id: str) -> Record:
    """An attempt, locked for the transaction."""
    charge = await repository.get(
        conn, "charges", origin.merchant_id, origin.livemode, charge_id, for_update=True
    )
    assert charge is not None
    return charge


async def intent_of(conn: Connection, origin: Origin, charge: Record) -> Record:
    """An attempt's intent, locked for the transaction."""
    intent = await repository.get(
        conn,
        "payment_intents",
        origin.merchant_id,
        origin.livemode,
        charge["intent_id"],
        for_update=True,
    )
    assert intent is not None
    return intent


async def move(
    conn: Connection,
    intent: Record,
    new: IntentStatus,
    origin: Origin,
    action: str,
    changes: dict[str, Any] | None = None,
) -> Record:
    """Move ``intent`` to ``new`` (refused unless the state machine allows it), applying
    ``changes`` in the same UPDATE and appending the audit row."""
    status = transition(intent["id"], intent["status"], new, action)
    row = await repository.move_intent(
        conn,
        origin.merchant_id,
        intent["id"],
        intent["status"],
        {**(changes or {}), "status": status.value},
        origin.source,
        origin.request_id,
        clock.now(),
    )
    return row


def error_for(intent: Record, charge: Record, message: str, code: str) -> CardError | None:
    """The error a failed attempt answers with (the intent's ``last_payment_error``; its
    ``message`` and ``code`` when it has none), or None unless ``charge`` is the intent's
    latest attempt and failed."""
    if charge["status"] != "failed" or intent["latest_charge"] != charge["id"]:
        return None
    error = intent["last_payment_error"] or {}
    return CardError(
        error.get("message") or message,
        code=error.get("code", code),
        decline_code=error.get("decline_code"),
        intent=intent_object(intent),
        charge_id=charge["id"],
        payment_method=charge["payment_method_id"],
    )


async def back_to_action(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    next_action: dict[str, Any] | None,
) -> Record:
    """Undo the move to ``processing`` that finishing a shopper's return (3-D Secure, a
    wallet or BNPL page) made, when finishing failed before any verdict was committed: the
    intent waits in ``requires_action`` with its redirect again (``processing →
    requires_action`` is in the state machine), so the shopper or a later return can finish
    it. Changes nothing if a verdict was committed meanwhile. Locked rows, caller's
    transaction."""
    if (
        intent["status"] != S.PROCESSING
        or intent["latest_charge"] != charge["id"]
        or charge["status"] != "pending"
        or charge["outcome"] != "requires_action"
    ):
        return intent
    return await move(
        conn,
        intent,
        S.REQUIRES_ACTION,
        origin,
        "confirm",
        {**IDLE, "next_action": next_action},
    )


# The outcomes of an attempt, shared by cards (``attempts``) and the asynchronous payment
# methods (``method_attempts``): each writes the charge, moves the intent, books the money
# (for a capture) and emits the events, in the caller's transaction.


async def require_action(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    psp_reference: str | None,
    url: str | None,
) -> tuple[Record, Record]:
    """The PSP needs the shopper on its page (3-D Secure, a wallet, BNPL): the intent waits
    in ``requires_action`` with ``next_action.redirect_to_url``."""
    charge = await repository.update(
        conn,
        "charges",
        origin.merchant_id,
        charge["id"],
        {"outcome": "requires_action", "psp_reference": psp_reference},
    )
    intent = await move(
        conn,
        intent,
        S.REQUIRES_ACTION,
        origin,
        "confirm",
        {
            **IDLE,
            "next_action": {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": url, "return_url": intent["return_url"]},
            },
        },
    )
    await emit(conn, origin, "payment_intent.requires_action", intent_object(intent))
    return intent, charge


async def fail(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    changes: dict[str, Any],
    error: dict[str, Any],
) -> tuple[Record, Record]:
    """The attempt failed and nothing was booked: the charge fails with ``changes`` (its
    outcome, failure code and message) and the intent asks for another payment method, with
    ``error`` as its ``last_payment_error``."""
    charge = await repository.update(
        conn, "charges", origin.merchant_id, charge["id"], {"status": "failed", **changes}
    )
    intent = await move(
        conn,
        intent,
        S.REQUIRES_PAYMENT_METHOD,
        origin,
        "confirm",
        {
            **IDLE,
            "last_payment_error": error,
            "next_action": None,
        },
    )
    await emit_all(
        conn,
        origin,
        [
            ("charge.failed", charge_object(charge)),
            ("payment_intent.payment_failed", intent_object(intent)),
        ],
    )
    return intent, charge


async def authorize(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    changes: dict[str, Any],
    *,
    now: datetime,
    intent_changes: dict[str, Any] | None = None,
) -> tuple[Record, Record]:
    """The PSP authorised without capturing: no money is booked; the intent waits for a
    capture in ``requires_capture``. ``changes`` go on the charge (its PSP reference)."""
    charge = await repository.update(
        conn,
        "charges",
        origin.merchant_id,
        charge["id"],
        {"status": "succeeded", "outcome": "authorized", **changes},
    )
    intent = await move(
        conn,
        intent,
        S.REQUIRES_CAPTURE,
        origin,
        "confirm",
        {
            **IDLE,
            **(intent_changes or {}),
            "amount_capturable": intent["amount"],
            "authorized_at": now,
        },
    )
    await emit_all(
        conn,
        origin,
        [
            ("charge.succeeded", charge_object(charge)),
            ("payment_intent.amount_capturable_updated", intent_object(intent)),
        ],
    )
    return intent, charge


async def capture(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    changes: dict[str, Any],
    *,
    now: datetime,
    available: datetime | None = None,
    intent_changes: dict[str, Any] | None = None,
) -> tuple[Record, Record]:
    """The money is the merchant's: books the capture (PSP clearing → merchant pending, fee
    to the platform; available on ``available``, default the usual settlement delay), the
    charge succeeds with ``changes`` (its PSP reference) and the intent ``succeeded``."""
    txn, fee = await money.record_capture(
        conn,
        merchant_id=origin.merchant_id,
        livemode=origin.livemode,
        charge_id=charge["id"],
        connector=charge["connector"],
        amount=charge["amount"],
        currency=charge["currency"],
        now=now,
        available=available,
    )
    charge = await repository.update(
        conn,
        "charges",
        origin.merchant_id,
        charge["id"],
        {
            "status": "succeeded",
            "outcome": "captured",
            "captured": True,
            "amount_captured": charge["amount"],
            "fee": fee,
            "balance_transaction": txn,
            **changes,
        },
    )
    intent = await move(
        conn,
        intent,
        S.SUCCEEDED,
        origin,
        "confirm",
        {
            **IDLE,
            **(intent_changes or {}),
            "amount_received": charge["amount"],
            "amount_capturable": 0,
        },
    )
    await emit_all(
        conn,
        origin,
        [
            ("charge.succeeded", charge_object(charge)),
            ("payment_intent.succeeded", intent_object(intent)),
        ],
    )
    return intent, charge


async def cancel(
    conn: Connection,
    origin: Origin,
    intent: Record,
    reason: str | None,
    *,
    now: datetime,
) -> Record:
    """The intent is canceled (its authorisation, if any, voided at the PSP first): nothing
    was booked and nothing stays capturable. Shared by ``cancel_intent``, the seven-day expiry
    and the recovery of a void a killed process left unrecorded."""
    intent = await move(
        conn,
        intent,
        S.CANCELED,
        origin,
        "cancel",
        {
            **IDLE,
            "amount_capturable": 0,
            "canceled_at": now,
            "cancellation_reason": reason,
            "next_action": None,
        },
    )
    await emit(conn, origin, "payment_intent.canceled", intent_object(intent))
    return intent
