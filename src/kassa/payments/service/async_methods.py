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
  ``next_action.redirect_to_url``); when the shopper comes back (``redirects.py``) or the
  provider says they decided, Kassa reads the provider's verdict and captures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from kassa.connectors.base import (
    BankAccount,
    ConnectorError,
    EventKind,
    MethodConnector,
    MethodOutcome,
    MethodRequest,
    MethodResult,
    OutcomeUnknown,
)
from kassa.connectors.registry import ConnectorRegistry
from kassa.core import clock, jobs
from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http import idempotency
from kassa.core.http.context import Caller
from kassa.core.ids import new_id
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer, journal
from kassa.payments import repository
from kassa.payments.errors import CardError
from kassa.payments.schemas import charge_object, intent_object
from kassa.payments.service import money
from kassa.payments.service.context import Origin, Payments, emit
from kassa.payments.service.transitions import move
from kassa.payments.states import CONFIRMABLE, IntentStatus, UnexpectedState
from kassa.vault import service as vault

S = IntentStatus
DEBIT_TYPES = frozenset({"us_bank_account", "sepa_debit"})
REDIRECT_TYPES = frozenset({"paypal", "klarna"})
ASYNC_TYPES = DEBIT_TYPES | REDIRECT_TYPES
# Stripe's currencies for bank debits; the other types are limited by their provider.
DEBIT_CURRENCY = {"us_bank_account": "usd", "sepa_debit": "eur"}
# A debit takes days on the rail: ask the bank daily if no notification came.
INQUIRY_EVERY = timedelta(days=1)
RESOLVE_JOB = "payments:resolve_async_payment"

_FAILURE_MESSAGES = {
    "insufficient_funds": "The customer's bank account has insufficient funds.",
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "invalid_account_number": "The customer's bank account number is invalid.",
    "debit_not_authorized": "The customer notified their bank that this debit was unauthorized.",
    "routing_number_invalid": "The routing number is invalid.",
    "account_number_invalid": "The bank account number is invalid.",
    "invalid_bank_account_iban": "The IBAN is invalid.",
    "payment_method_provider_decline": "The payment was declined by the payment provider.",
    "payment_intent_payment_attempt_failed": "The customer did not complete the payment.",
    "processing_error": "The payment provider could not be reached. Try again in a little bit.",
}


def is_async(pm: dict[str, Any] | None) -> bool:
    """True for a payment method this module pays with (not a card)."""
    return pm is not None and pm.get("type") in ASYNC_TYPES


def check_types(types: Sequence[str] | None, currency: str) -> None:
    """Refuse ``payment_method_types`` a currency excludes (bank debits are single-currency)."""
    for t in types or ():
        wanted = DEBIT_CURRENCY.get(t)
        if wanted is not None and currency.lower() != wanted:
            raise InvalidRequest(
                f"The currency provided ({currency.lower()}) is invalid for payments with "
                f"{t}; it only supports {wanted}.",
                param="currency",
            )


def _method_connectors(p: Payments, pm_type: str, currency: str) -> list[str]:
    registry = p.connectors
    if not isinstance(registry, ConnectorRegistry):
        return []
    return registry.method_connectors(pm_type, currency)


def _connector(p: Payments, name: str) -> MethodConnector:
    connector = p.connectors.get(name)
    if not isinstance(connector, MethodConnector):
        raise InvalidRequest(f"Connector {name} does not take this payment method.")
    return connector


def return_url_for(p: Payments, charge_id: str) -> str:
    """Where the wallet or BNPL page sends the shopper: Kassa first (to read the provider's
    verdict and capture), then the merchant's ``return_url``."""
    return f"{p.public_url.rstrip('/')}/payments/redirect/{charge_id}/return"


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
    allowed = intent["payment_method_types"]
    if allowed is not None and pm_type not in allowed:
        raise InvalidRequest(
            f"The PaymentMethod provided ({pm_type}) is not allowed for this PaymentIntent. "
            f"Use a PaymentMethod of one of these types: {', '.join(allowed)}.",
            code="payment_intent_incompatible_payment_method",
            param="payment_method",
        )
    if intent["customer_id"] and pm.get("customer") not in (None, intent["customer_id"]):
        raise InvalidRequest(
            f"The provided PaymentMethod {pm['id']} belongs to another customer.",
            param="payment_method",
        )
    check_types([pm_type], intent["currency"])
    back = return_url or intent["return_url"]
    if pm_type in REDIRECT_TYPES and not back:
        raise InvalidRequest(
            f"A return_url is required to confirm a PaymentIntent with a {pm_type} "
            "PaymentMethod: the customer is redirected to approve the payment.",
            param="return_url",
        )
    candidates = _method_connectors(p, pm_type, intent["currency"])
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
            "payment_method_types": allowed or [pm_type],
            "latest_charge": charge["id"],
            "last_payment_error": None,
            "next_action": None,
            "operation": "confirm",
            "return_url": back,
        },
    )
    return intent, charge


async def method_request(p: Payments, origin: Origin, charge: Record) -> MethodRequest:
    """The provider request for an attempt; a bank account leaves the vault for it only."""
    pm_type = charge["payment_method_details"]["type"]
    account = None
    email = None
    if pm_type in DEBIT_TYPES:
        opened = await vault.bank_account_for_debit(
            p.db, origin.merchant_id, origin.livemode, charge["payment_method_id"]
        )
        account = BankAccount(
            opened.rail,
            opened.account_number,
            opened.routing_number,
            opened.iban,
            opened.holder_name,
        )
    else:
        pm = await vault.get_payment_method(
            p.db, origin.merchant_id, origin.livemode, charge["payment_method_id"]
        )
        email = pm["billing_details"].get("email")
    back = return_url_for(p, charge["id"])
    return MethodRequest(
        reference=charge["id"],
        amount=charge["amount"],
        currency=charge["currency"],
        payment_method_type=pm_type,
        capture=charge["capture"],
        return_url=back,
        cancel_url=back,
        email=email,
        bank_account=account,
        description=charge["description"],
    )


async def _call(p: Payments, origin: Origin, charge: Record, step: str, **kw: Any) -> MethodResult:
    """Call the provider outside any transaction. An unknown outcome stays unknown (asked
    again later under the same reference); a request that never reached the provider, or
    that it refused, fails the attempt: nothing was charged."""
    connector = _connector(p, charge["connector"])
    request = await method_request(p, origin, charge)
    try:
        if step == "start":
            return await connector.start(request)
        if step == "complete":
            return await connector.complete(request, charge["psp_reference"] or "", kw["params"])
        return await connector.inquire(charge["id"])
    except OutcomeUnknown:
        return MethodResult(MethodOutcome.NOT_FOUND, None, psp_code="unknown")
    except ConnectorError as exc:
        return MethodResult(
            MethodOutcome.DECLINED,
            None,
            failure_code="processing_error",
            message=str(exc) or None,
            psp_code="not_sent",
        )


def _unknown(result: MethodResult) -> bool:
    return result.outcome is MethodOutcome.NOT_FOUND and result.psp_code == "unknown"


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
    result = await _call(p, origin, charge, "start")
    if result.outcome is MethodOutcome.NOT_FOUND and not _unknown(result):
        result = MethodResult(MethodOutcome.DECLINED, None, failure_code="processing_error")
    obj, error = await settle(p, origin, charge["id"], result, caller.idempotency)
    if error is not None:
        raise error
    return await expansion.expand(p.db, obj, expand, caller.merchant_id, caller.livemode)


async def settle(
    p: Payments,
    origin: Origin,
    charge_id: str,
    result: MethodResult,
    idem: idempotency.IdempotencyKey | None = None,
) -> tuple[dict[str, Any], CardError | None]:
    """Commit a provider's answer in one transaction (state, ledger, events and, for the
    request that started it, the idempotent response). Returns the intent object and, for a
    failed attempt, the error to answer with."""
    async with p.db.transaction() as conn:
        charge = await repository.get(
            conn, "charges", origin.merchant_id, origin.livemode, charge_id, for_update=True
        )
        assert charge is not None
        intent = await _intent(conn, origin, charge)
        intent, charge = await apply(conn, origin, intent, charge, result)
        obj = intent_object(intent)
        error = _error_for(intent, charge)
        if idem is not None:
            body = error.body() if error else obj
            await idempotency.store_response(conn, idem, error.status if error else 200, body)
    return obj, error


async def _intent(conn: Connection, origin: Origin, charge: Record) -> Record:
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


def _error_for(intent: Record, charge: Record) -> CardError | None:
    if charge["status"] != "failed" or intent["latest_charge"] != charge["id"]:
        return None
    error = intent["last_payment_error"] or {}
    return CardError(
        error.get("message") or "The payment failed.",
        code=error.get("code", "payment_method_provider_decline"),
        decline_code=None,
        intent=intent_object(intent),
        charge_id=charge["id"],
        payment_method=charge["payment_method_id"],
    )


async def apply(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    result: MethodResult,
) -> tuple[Record, Record]:
    """Apply a provider's verdict to a locked charge and intent. Stale or repeated verdicts
    (a notification after the inquiry got there first, a second return) change nothing."""
    o = result.outcome
    m = origin.merchant_id
    current = intent["latest_charge"] == charge["id"]
    if o is MethodOutcome.RETURNED and charge["status"] == "succeeded":
        return intent, await _late_return(conn, origin, charge, result)
    if charge["status"] != "pending" or not current:
        return intent, charge
    if _unknown(result):
        if charge["outcome"] == "pending":
            charge = await repository.update(
                conn, "charges", m, charge["id"], {"outcome": "unknown"}
            )
            await _schedule(conn, origin, charge, timedelta(minutes=1))
        return intent, charge
    if o is MethodOutcome.PROCESSING:
        if charge["outcome"] in ("pending", "unknown"):
            charge = await repository.update(
                conn,
                "charges",
                m,
                charge["id"],
                {"outcome": "processing", "psp_reference": result.psp_reference},
            )
            intent = await repository.update(
                conn, "payment_intents", m, intent["id"], {"operation": None}
            )
            await emit(conn, origin, "charge.pending", charge_object(charge))
            await emit(conn, origin, "payment_intent.processing", intent_object(intent))
            await _schedule(conn, origin, charge, INQUIRY_EVERY)
        return intent, charge
    if o is MethodOutcome.REQUIRES_ACTION:
        if S(intent["status"]) is not S.PROCESSING:
            return intent, charge  # still waiting for the shopper
        charge = await repository.update(
            conn,
            "charges",
            m,
            charge["id"],
            {"outcome": "requires_action", "psp_reference": result.psp_reference},
        )
        intent = await move(
            conn,
            intent,
            S.REQUIRES_ACTION,
            origin,
            "confirm",
            {
                "operation": None,
                "next_action": {
                    "type": "redirect_to_url",
                    "redirect_to_url": {
                        "url": result.redirect_url,
                        "return_url": intent["return_url"],
                    },
                },
            },
        )
        await emit(conn, origin, "payment_intent.requires_action", intent_object(intent))
        return intent, charge
    if o in (MethodOutcome.DECLINED, MethodOutcome.RETURNED, MethodOutcome.NOT_FOUND):
        return await _fail(conn, origin, intent, charge, result)
    if S(intent["status"]) is S.REQUIRES_ACTION:
        # Approved on the provider's page, learnt by notification or inquiry: through
        # ``processing`` as the state machine requires, each step audited.
        intent = await move(conn, intent, S.PROCESSING, origin, "confirm", {"next_action": None})
    details = _with_details(charge, result)
    if o is MethodOutcome.AUTHORIZED:
        charge = await repository.update(
            conn,
            "charges",
            m,
            charge["id"],
            {
                "status": "succeeded",
                "outcome": "authorized",
                "psp_reference": result.psp_reference or charge["psp_reference"],
                "payment_method_details": details,
            },
        )
        intent = await move(
            conn,
            intent,
            S.REQUIRES_CAPTURE,
            origin,
            "confirm",
            {
                "operation": None,
                "next_action": None,
                "amount_capturable": intent["amount"],
                "authorized_at": clock.now(),
            },
        )
        await emit(conn, origin, "charge.succeeded", charge_object(charge))
        await emit(conn, origin, "payment_intent.amount_capturable_updated", intent_object(intent))
        return intent, charge
    return await _captured(conn, origin, intent, charge, result, details)


def _with_details(charge: Record, result: MethodResult) -> dict[str, Any]:
    details: dict[str, Any] = dict(charge["payment_method_details"])
    t = details["type"]
    if result.details:
        details[t] = {**details[t], **{k: v for k, v in result.details.items() if k in details[t]}}
    return details


def _available_on(now: datetime, after: timedelta | None) -> datetime | None:
    """When money the provider pays out ``after`` the capture becomes the merchant's: the
    midnight (UTC) following the payout. None: the usual settlement delay."""
    if after is None:
        return None
    day = (now + after).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


async def _captured(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    result: MethodResult,
    details: dict[str, Any],
) -> tuple[Record, Record]:
    """The money is the merchant's: a debit settled, a wallet or BNPL payment captured. Books
    the capture (PSP clearing → merchant pending, fee to the platform); a BNPL provider's
    deferred payout makes it available only after that payout."""
    now = clock.now()
    txn, fee = await money.record_capture(
        conn,
        merchant_id=origin.merchant_id,
        livemode=origin.livemode,
        charge_id=charge["id"],
        connector=charge["connector"],
        amount=charge["amount"],
        currency=charge["currency"],
        now=now,
        available=_available_on(now, result.settles_after),
    )
    charge = await repository.update(
        conn,
        "charges",
        origin.merchant_id,
        charge["id"],
        {
            "status": "succeeded",
            "outcome": "captured",
            "psp_reference": result.psp_reference or charge["psp_reference"],
            "captured": True,
            "amount_captured": charge["amount"],
            "fee": fee,
            "balance_transaction": txn,
            "payment_method_details": details,
        },
    )
    intent = await move(
        conn,
        intent,
        S.SUCCEEDED,
        origin,
        "confirm",
        {
            "operation": None,
            "next_action": None,
            "amount_received": charge["amount"],
            "amount_capturable": 0,
        },
    )
    await emit(conn, origin, "charge.succeeded", charge_object(charge))
    await emit(conn, origin, "payment_intent.succeeded", intent_object(intent))
    return intent, charge


async def _fail(
    conn: Connection, origin: Origin, intent: Record, charge: Record, result: MethodResult
) -> tuple[Record, Record]:
    """The attempt failed (declined, cancelled by the shopper, debit returned before it
    settled): nothing was booked; the intent asks for another payment method."""
    code = result.failure_code or "payment_method_provider_decline"
    message = _FAILURE_MESSAGES.get(code) or result.message or "The payment failed."
    charge = await repository.update(
        conn,
        "charges",
        origin.merchant_id,
        charge["id"],
        {
            "status": "failed",
            "outcome": "returned" if result.outcome is MethodOutcome.RETURNED else "declined",
            "psp_reference": result.psp_reference or charge["psp_reference"],
            "failure_code": code,
            "failure_message": message,
        },
    )
    pm_type = charge["payment_method_details"]["type"]
    error: dict[str, Any] = {
        "type": "card_error" if pm_type in REDIRECT_TYPES else "invalid_request_error",
        "code": code,
        "message": message,
        "charge": charge["id"],
        "payment_method": {
            "id": charge["payment_method_id"],
            "object": "payment_method",
            "type": pm_type,
        },
        "payment_method_type": pm_type,
    }
    intent = await move(
        conn,
        intent,
        S.REQUIRES_PAYMENT_METHOD,
        origin,
        "confirm",
        {"operation": None, "last_payment_error": error, "next_action": None},
    )
    await emit(conn, origin, "charge.failed", charge_object(charge))
    await emit(conn, origin, "payment_intent.payment_failed", intent_object(intent))
    return intent, charge


async def _late_return(
    conn: Connection, origin: Origin, charge: Record, result: MethodResult
) -> Record:
    """A debit returned after it settled (an unauthorised-debit claim, a SEPA refund
    request): the bank took the money back, so the merchant's balance gives it back with
    reversing transfers (merchant pending → bank clearing; the fee is kept), reported as a
    ``payment_failure_refund`` balance transaction, and the charge fails. The intent stays
    ``succeeded`` (a terminal state); the charge and the events tell what happened."""
    if charge["outcome"] == "returned":
        return charge
    m, lm = origin.merchant_id, origin.livemode
    amount = charge["amount_captured"] - charge["amount_refunded"]
    clearing, pending, _fees = await money.accounts(
        conn, m, lm, charge["connector"], charge["currency"]
    )
    if amount > 0:
        transfer = Transfer.single(
            f"{charge['id']}:return", pending, clearing, amount, charge["currency"], "return"
        )
        results = await ledger.post_transfers_in(
            conn, Batch(m, lm, journal(f"{charge['id']}:return", [transfer]))
        )
        ledger.raise_for_failures(results)
        await money.balance_transaction(
            conn,
            merchant_id=m,
            livemode=lm,
            amount=-amount,
            fee=0,
            currency=charge["currency"],
            type="payment_failure_refund",
            category="charge_failure",
            source_id=charge["id"],
            now=clock.now(),
            description=f"PAYMENT FAILURE ({charge['id']})",
        )
    code = result.failure_code or "debit_not_authorized"
    charge = await repository.update(
        conn,
        "charges",
        m,
        charge["id"],
        {
            "status": "failed",
            "outcome": "returned",
            "failure_code": code,
            "failure_message": _FAILURE_MESSAGES.get(code) or result.message,
        },
    )
    await emit(conn, origin, "charge.failed", charge_object(charge))
    return charge


async def _schedule(conn: Connection, origin: Origin, charge: Record, after: timedelta) -> None:
    """Ask the provider later (the fallback to its notifications)."""
    await jobs.defer(
        conn,
        RESOLVE_JOB,
        {
            "merchant_id": origin.merchant_id,
            "livemode": origin.livemode,
            "charge_id": charge["id"],
        },
        scheduled_at=clock.now() + after,
        queueing_lock=f"async:{charge['id']}:{charge['inquiries']}",
    )


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
        return await complete_redirect(p, origin, charge, {})
    step = "inquire" if charge["outcome"] == "processing" else "start"
    result = await _call(p, origin, charge, step)
    async with p.db.transaction() as conn:
        locked = await repository.get(
            conn, "charges", merchant_id, livemode, charge_id, for_update=True
        )
        assert locked is not None
        intent = await _intent(conn, origin, locked)
        if (result.outcome is MethodOutcome.PROCESSING or _unknown(result)) and locked[
            "outcome"
        ] in ("processing", "unknown"):
            # No verdict yet: ask again later.
            locked = await repository.update(
                conn, "charges", merchant_id, charge_id, {"inquiries": locked["inquiries"] + 1}
            )
            await _schedule(conn, origin, locked, INQUIRY_EVERY)
            return str(locked["outcome"])
        if result.outcome is MethodOutcome.NOT_FOUND and step == "inquire":
            return str(locked["outcome"])  # the bank lost track of nothing we can act on
        _, locked = await apply(conn, origin, intent, locked, result)
    return str(locked["outcome"])


async def complete_redirect(
    p: Payments, origin: Origin, charge: Record, params: dict[str, str]
) -> str:
    """Finish a payment waiting for the shopper: move the intent to ``processing``, read the
    provider's verdict (capturing an approved payment) and commit it. A payment the shopper
    has not decided yet goes back to ``requires_action``; a finished one is left alone."""
    async with p.db.transaction() as conn:
        locked = await repository.get(
            conn, "charges", origin.merchant_id, origin.livemode, charge["id"], for_update=True
        )
        assert locked is not None
        intent = await _intent(conn, origin, locked)
        waiting = (
            S(intent["status"]) is S.REQUIRES_ACTION
            and intent["latest_charge"] == locked["id"]
            and locked["outcome"] == "requires_action"
        )
        if not waiting:
            return str(locked["outcome"])
        redirect = intent["next_action"]
        await move(
            conn,
            intent,
            S.PROCESSING,
            origin,
            "confirm",
            {"operation": "authenticate", "next_action": None},
        )
    result = await _call(p, origin, locked, "complete", params=params)
    async with p.db.transaction() as conn:
        again = await repository.get(
            conn, "charges", origin.merchant_id, origin.livemode, charge["id"], for_update=True
        )
        assert again is not None
        intent = await _intent(conn, origin, again)
        if result.outcome is MethodOutcome.REQUIRES_ACTION or _unknown(result):
            # Not decided yet (or no answer): the shopper may still approve; put the redirect
            # back, and ask again later when the provider did not answer.
            intent = await move(
                conn,
                intent,
                S.REQUIRES_ACTION,
                origin,
                "confirm",
                {"operation": None, "next_action": redirect},
            )
            if _unknown(result):
                await _schedule(conn, origin, again, timedelta(minutes=1))
            return str(again["outcome"])
        _, again = await apply(conn, origin, intent, again, result)
    return str(again["outcome"])


EVENT_KINDS = frozenset(
    {EventKind.DEBIT_SETTLED, EventKind.DEBIT_RETURNED, EventKind.APPROVED, EventKind.DECLINED}
)


async def apply_event(conn: Connection, kind: str, event: dict[str, Any]) -> str:
    """Apply a verified provider notification (``psp_events``' inbox, in its transaction).
    A debit's settlement or return is applied as it says; a shopper's decision on a wallet or
    BNPL page schedules ``resolve``, which reads the verdict from the provider and captures
    (a call no transaction may wait on). Returns what happened, for the inbox row."""
    reference = event.get("reference")
    charge = await repository.find_by_id(conn, "charges", reference) if reference else None
    if charge is None:
        return "unknown attempt"
    origin = Origin(charge["merchant_id"], charge["livemode"], "psp_webhook")
    if kind in (EventKind.APPROVED, EventKind.DECLINED):
        if charge["status"] != "pending":
            return f"no change ({charge['status']})"
        await jobs.defer(
            conn,
            RESOLVE_JOB,
            {
                "merchant_id": charge["merchant_id"],
                "livemode": charge["livemode"],
                "charge_id": charge["id"],
            },
            queueing_lock=f"async:{charge['id']}:webhook",
        )
        return "verification scheduled"
    intent = await _intent(conn, origin, charge)
    if kind == EventKind.DEBIT_SETTLED:
        result = MethodResult(MethodOutcome.CAPTURED, event.get("psp_reference"))
    else:
        result = MethodResult(
            MethodOutcome.RETURNED, event.get("psp_reference"), failure_code=event.get("reason")
        )
    before = (charge["status"], charge["outcome"])
    _, charge = await apply(conn, origin, intent, charge, result)
    if (charge["status"], charge["outcome"]) == before:
        return f"no change ({charge['status']})"
    return f"debit {charge['outcome']} ({charge['status']})"


async def shopper_returned(
    p: Payments, charge_id: str, params: dict[str, str]
) -> tuple[dict[str, Any], str | None]:
    """The shopper's browser is back from the wallet or BNPL page: finish the payment with
    the provider's verdict (the query is never trusted) and answer the intent and the
    merchant's return URL. A second return changes nothing."""
    async with p.db.connection() as conn:
        charge = await repository.find_by_id(conn, "charges", charge_id)
    if charge is None:
        raise ResourceMissing("charge", charge_id)
    origin = Origin(charge["merchant_id"], charge["livemode"], "api")
    await complete_redirect(p, origin, charge, params)
    async with p.db.connection() as conn:
        intent = await repository.get(
            conn, "payment_intents", origin.merchant_id, origin.livemode, charge["intent_id"]
        )
    assert intent is not None
    return intent_object(intent), intent["return_url"]
