"""Asynchronous payment methods: bank debits (``us_bank_account``, ``sepa_debit``), a wallet
(``paypal``) and buy now, pay later (``klarna``), through ``MethodConnector``s.

The saga is the card one (DESIGN.md §4): the attempt (a ``pending`` charge, the intent in
``processing``) commits before the provider is called, the outcome commits after it, each
with its state change, ledger transfers and events in one transaction. What differs is when
the outcome is known:

- a debit answers ``processing``; the intent stays ``processing`` until the bank's
  notification (or an inquiry) says it settled (``succeeded``, money booked) or was returned
  (``requires_payment_method``, nothing booked). A return after settling takes the money
  back with reversing transfers;
- a wallet or BNPL payment answers with a page for the shopper (``requires_action``,
  ``next_action.redirect_to_url``); when the shopper comes back or the provider says they
  decided, Kassa reads the provider's verdict and captures.

This module is the entry point (confirm, resolve, notifications); ``method_attempts`` calls
the provider and commits its answers, ``bank_debits`` and ``redirects`` hold what is
particular to debits and to the shopper's page.
"""

from __future__ import annotations

from typing import Any

from kassa.connectors.base import MethodOutcome, MethodResult
from kassa.core import clock
from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest
from kassa.core.http import expand as expansion
from kassa.core.http.context import Caller
from kassa.core.ids import new_id
from kassa.payments import repository
from kassa.payments.service import attempts as card_attempts
from kassa.payments.service import bank_debits, redirects, transitions
from kassa.payments.service import method_attempts as attempts
from kassa.payments.service.context import Origin, Payments
from kassa.payments.service.transitions import move
from kassa.payments.states import CONFIRMABLE, IntentStatus, UnexpectedState

S = IntentStatus
EVENT_KINDS = bank_debits.EVENT_KINDS | redirects.EVENT_KINDS


def is_async(pm: dict[str, Any] | None) -> bool:
    """True for a payment method this module pays with (not a card)."""
    return pm is not None and pm.get("type") in attempts.ASYNC_TYPES


def _method_details(pm: dict[str, Any]) -> dict[str, Any]:
    """The charge's ``payment_method_details`` for a payment method, Stripe's shape."""
    t = pm["type"]
    shown = dict(pm.get(t) or {})
    if t == "us_bank_account":
        keys = ("account_holder_type", "account_type", "bank_name", "fingerprint", "last4")
        details = {k: shown.get(k) for k in keys} | {"routing_number": shown.get("routing_number")}
    elif t == "sepa_debit":
        keys = ("bank_code", "branch_code", "country", "fingerprint", "last4")
        details = {k: shown.get(k) for k in keys} | {"mandate": None}
    elif t == "paypal":
        details = {
            "payer_email": None,
            "payer_id": None,
            "payer_name": None,
            "seller_protection": None,
            "transaction_id": None,
        }
    else:
        details = {"payment_method_category": None, "preferred_locale": None}
    return {"type": t, t: details}


async def begin(
    p: Payments,
    conn: Connection,
    origin: Origin,
    intent: Record,
    pm: dict[str, Any],
    *,
    return_url: str | None,
) -> tuple[Record, Record]:
    """Write the attempt's intent to act: a ``pending`` charge at the provider of the payment
    method's type, and the intent in ``processing``. Moves no money."""
    if S(intent["status"]) not in CONFIRMABLE:
        raise UnexpectedState(intent["id"], intent["status"], "confirm")
    pm_type: str = pm["type"]
    card_attempts.check_payment_method_type(intent, pm_type)
    if intent["customer_id"] and pm.get("customer") not in (None, intent["customer_id"]):
        raise InvalidRequest(
            f"The provided PaymentMethod {pm['id']} belongs to another customer.",
            param="payment_method",
        )
    bank_debits.check_types([pm_type], intent["currency"])
    if pm_type in bank_debits.DEBIT_TYPES and intent["capture_method"] == "manual":
        # As at Stripe: a debit is collected when the rail settles it, never held for a
        # later capture (it would otherwise be captured on settlement anyway).
        raise InvalidRequest(
            f"The PaymentMethod type {pm_type} does not support capture_method=manual; "
            "use capture_method=automatic.",
            param="capture_method",
        )
    back = return_url or intent["return_url"]
    if pm_type in attempts.REDIRECT_TYPES and not back:
        raise InvalidRequest(
            f"A return_url is required to confirm a PaymentIntent with a {pm_type} "
            "PaymentMethod: the customer is redirected to approve the payment.",
            param="return_url",
        )
    candidates = attempts.method_connectors(p, pm_type, intent["currency"])
    if not candidates:
        raise InvalidRequest(
            f"No payment provider is configured for {pm_type} in {intent['currency'].upper()}.",
            code="payment_method_unavailable",
            param="payment_method",
        )
    charge = await repository.insert(
        conn,
        "charges",
        {
            "merchant_id": origin.merchant_id,
            "id": new_id("ch"),
            "livemode": origin.livemode,
            "intent_id": intent["id"],
            "created_at": clock.now(),
            "amount": intent["amount"],
            "currency": intent["currency"],
            "status": "pending",
            "outcome": "pending",
            "connector": candidates[0],
            "capture": intent["capture_method"] != "manual",
            "payment_method_id": pm["id"],
            "customer_id": intent["customer_id"],
            "description": intent["description"],
            "metadata": intent["metadata"],
            "payment_method_details": _method_details(pm),
            "routing": {
                "connector": candidates[0],
                "candidates": candidates,
                "reason": f"payment method type {pm_type}",
            },
            "idempotency_key": origin.idempotency_key,
        },
    )
    intent = await move(
        conn,
        intent,
        S.PROCESSING,
        origin,
        "confirm",
        {
            "payment_method_id": pm["id"],
            "payment_method_types": intent["payment_method_types"] or [pm_type],
            "latest_charge": charge["id"],
            "last_payment_error": None,
            "next_action": None,
            "operation": "confirm",
            "operation_started_at": clock.now(),
            "return_url": back,
        },
    )
    return intent, charge


async def finish(
    p: Payments,
    caller: Caller,
    origin: Origin,
    intent: Record,
    charge: Record,
    expand: list[str],
) -> dict[str, Any]:
    """Start the payment at its provider and commit what it answered (the saga's second
    transaction): ``processing`` for a debit, ``requires_action`` with the provider's page
    for a redirect, or a failure (a 402 naming the charge, as for a declined card)."""
    result = await attempts.call(p, origin, charge, "start", first=True)
    if result.outcome is MethodOutcome.NOT_FOUND and not attempts.unknown(result):
        result = MethodResult(MethodOutcome.DECLINED, None, failure_code="processing_error")
    obj, error = await attempts.settle(p, origin, charge["id"], result, caller.idempotency)
    if error is not None:
        raise error
    return await expansion.expand(p.db, obj, expand, caller.merchant_id, caller.livemode)


async def resolve(p: Payments, merchant_id: str, livemode: bool, charge_id: str) -> str:
    """Learn an attempt's outcome from its provider, for a lost answer or a lost
    notification: resend an unanswered start (same reference: the provider answers the
    first), ask after a debit on the rail, read the provider's verdict on a redirect (and
    capture an approved one). Returns the charge's outcome now."""
    origin = Origin(merchant_id, livemode, "system")
    async with p.db.connection() as conn:
        charge = await repository.get(conn, "charges", merchant_id, livemode, charge_id)
    if charge is None or charge["status"] != "pending":
        return charge["outcome"] if charge else "missing"
    if charge["outcome"] == "requires_action":
        return await redirects.complete_redirect(p, origin, charge, {})
    step = "inquire" if charge["outcome"] == "processing" else "start"
    result = await attempts.call(p, origin, charge, step)
    async with p.db.transaction() as conn:
        locked = await transitions.locked_charge(conn, origin, charge_id)
        intent = await transitions.intent_of(conn, origin, locked)
        if (result.outcome is MethodOutcome.PROCESSING or attempts.unknown(result)) and locked[
            "outcome"
        ] in ("processing", "unknown"):
            # No verdict yet: ask again later.
            locked = await repository.update(
                conn, "charges", merchant_id, charge_id, {"inquiries": locked["inquiries"] + 1}
            )
            await attempts.schedule(conn, origin, locked, bank_debits.INQUIRY_EVERY)
            return str(locked["outcome"])
        if result.outcome is MethodOutcome.NOT_FOUND and step == "inquire":
            return str(locked["outcome"])  # the bank lost track of nothing we can act on
        _, locked = await attempts.apply(conn, origin, intent, locked, result)
    return str(locked["outcome"])


async def apply_event(conn: Connection, kind: str, event: dict[str, Any]) -> str:
    """Apply a verified provider notification (``psp_events``' inbox, in its transaction).
    A debit's settlement or return is applied as it says; a shopper's decision on a wallet or
    BNPL page schedules ``resolve``, which reads the verdict from the provider and captures
    (a call no transaction may wait on). Returns what happened, for the inbox row."""
    reference = event.get("reference")
    charge = await repository.find_by_id(conn, "charges", reference) if reference else None
    if charge is None:
        return "unknown attempt"
    if kind in redirects.EVENT_KINDS:
        return await redirects.verify_later(conn, charge)
    origin = Origin(charge["merchant_id"], charge["livemode"], "psp_webhook")
    intent = await transitions.intent_of(conn, origin, charge)
    result = bank_debits.event_result(kind, event)
    before = (charge["status"], charge["outcome"])
    _, charge = await attempts.apply(conn, origin, intent, charge, result)
    if (charge["status"], charge["outcome"]) == before:
        return f"no change ({charge['status']})"
    return f"debit {charge['outcome']} ({charge['status']})"
