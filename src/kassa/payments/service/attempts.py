"""The payment saga of DESIGN.md §4: an attempt (a ``charge``) is committed before the PSP is
called, no lock is held during the call, and the outcome — intent and charge state, ledger
transfers, events and the stored idempotent response — commits in one transaction after it.

An answer that never came (timeout, 5xx, a crash between the two transactions) leaves the
attempt ``pending`` with outcome ``unknown``; ``resolve_charge`` asks the PSP by our reference
and finishes the saga. Nothing is ever guessed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kassa.connectors.base import (
    AuthorizeOutcome,
    AuthorizeRequest,
    AuthorizeResult,
    Card,
    ConnectorError,
    OutcomeUnknown,
    PaymentState,
)
from kassa.core import clock, jobs
from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import idempotency
from kassa.core.http.idempotency import IdempotencyKey
from kassa.core.ids import new_id
from kassa.payments import repository
from kassa.payments.errors import CardError
from kassa.payments.schemas import charge_object, intent_object
from kassa.payments.service import money
from kassa.payments.service.context import Origin, Payments, emit
from kassa.payments.service.transitions import move
from kassa.payments.states import CONFIRMABLE, IntentStatus, UnexpectedState
from kassa.vault import service as vault

S = IntentStatus
# Status inquiries for an unknown outcome, then a person looks (Kill Bill's janitor schedule).
INQUIRY_BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(hours=1),
    timedelta(days=1),
)

_MESSAGES = {
    "card_declined": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "incorrect_number": "Your card number is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the PSP said about an attempt, in Kassa's terms."""

    outcome: str  # authorized | captured | declined | requires_action | unknown | not_sent
    psp_reference: str | None = None
    failure_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    redirect_url: str | None = None


def verdict_of(result: AuthorizeResult) -> Verdict:
    outcome = {
        AuthorizeOutcome.AUTHORIZED: "authorized",
        AuthorizeOutcome.CAPTURED: "captured",
        AuthorizeOutcome.DECLINED: "declined",
        AuthorizeOutcome.REQUIRES_ACTION: "requires_action",
    }[result.outcome]
    return Verdict(
        outcome,
        result.psp_reference,
        result.failure_code,
        result.decline_code,
        result.message,
        result.redirect_url,
    )


async def payment_method_for(
    p: Payments, origin: Origin, pm_id: str | None
) -> dict[str, Any] | None:
    """The payment method an attempt will use, read before the attempt's transaction opens:
    a transaction holding a row lock must never wait for a second pooled connection (under
    load every connection could be held by requests queued on that same lock)."""
    if pm_id is None:
        return None
    return await vault.get_payment_method(p.db, origin.merchant_id, origin.livemode, pm_id)


async def begin(
    p: Payments,
    conn: Connection,
    origin: Origin,
    intent: Record,
    pm: dict[str, Any] | None,
    *,
    return_url: str | None,
) -> tuple[Record, Record]:
    """Write the attempt's intent to act (the saga's first transaction): a ``pending`` charge
    routed to a PSP, and the intent in ``processing``. Moves no money. ``pm`` is the payment
    method read by ``payment_method_for`` (the intent's own when the request named none)."""
    if S(intent["status"]) not in CONFIRMABLE:
        raise UnexpectedState(intent["id"], intent["status"], "confirm")
    if pm is None:
        raise InvalidRequest(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update it with a payment_method and try again.",
            code="payment_intent_unexpected_state",
            param="payment_method",
        )
    pm_id: str = pm["id"]
    if intent["customer_id"] and pm.get("customer") not in (None, intent["customer_id"]):
        raise InvalidRequest(
            f"The provided PaymentMethod {pm_id} belongs to another customer.",
            param="payment_method",
        )
    card = pm["card"]
    candidates = p.connectors.route(intent["currency"], card["brand"])
    if not candidates:
        raise InvalidRequest(
            f"No payment processor is configured for {card['brand']} in "
            f"{intent['currency'].upper()}.",
            code="payment_method_unavailable",
            param="payment_method",
        )
    now = clock.now()
    charge = await repository.insert(
        conn,
        "charges",
        {
            "merchant_id": origin.merchant_id,
            "id": new_id("ch"),
            "livemode": origin.livemode,
            "intent_id": intent["id"],
            "created_at": now,
            "amount": intent["amount"],
            "currency": intent["currency"],
            "status": "pending",
            "outcome": "pending",
            "connector": candidates[0],
            "capture": intent["capture_method"] != "manual",
            "payment_method_id": pm_id,
            "customer_id": intent["customer_id"],
            "description": intent["description"],
            "metadata": intent["metadata"],
            "payment_method_details": {
                **{
                    k: card.get(k)
                    for k in (
                        "brand",
                        "last4",
                        "exp_month",
                        "exp_year",
                        "fingerprint",
                        "funding",
                        "country",
                    )
                },
                "network": card["brand"],
            },
            "routing": {
                "connector": candidates[0],
                "candidates": candidates,
                "reason": "first matching routing rule",
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
            "payment_method_id": pm_id,
            "latest_charge": charge["id"],
            "last_payment_error": None,
            "next_action": None,
            "operation": "confirm",
            "return_url": return_url or intent["return_url"],
        },
    )
    return intent, charge


def authentication_return_url(p: Payments, charge_id: str) -> str:
    """Where the 3-D Secure challenge sends the shopper back: Kassa first (to finish the
    authorisation), then the merchant's ``return_url``."""
    return f"{p.public_url.rstrip('/')}/payments/3ds/{charge_id}/return"


async def authorize_request(p: Payments, origin: Origin, charge: Record) -> AuthorizeRequest:
    """The PSP request for an attempt; the card leaves the vault for this call only."""
    card = await vault.card_for_authorization(
        p.db, origin.merchant_id, origin.livemode, charge["payment_method_id"]
    )
    return AuthorizeRequest(
        reference=charge["id"],
        amount=charge["amount"],
        currency=charge["currency"],
        card=Card(card.number, card.exp_month, card.exp_year, card.cvc, brand=card.brand),
        capture=charge["capture"],
        description=charge["description"],
        return_url=authentication_return_url(p, charge["id"]),
    )


async def call_psp(p: Payments, origin: Origin, intent: Record, charge: Record) -> Verdict:
    """Ask the routed PSP to authorise (and, for automatic capture, capture) the attempt.
    Runs outside any transaction."""
    request = await authorize_request(p, origin, charge)
    try:
        return verdict_of(await p.connectors.get(charge["connector"]).authorize(request))
    except OutcomeUnknown:
        return Verdict("unknown")
    except ConnectorError as exc:
        # The request never reached the PSP, or the PSP refused it outright: nothing was
        # charged, so the attempt can fail safely and the customer may try again.
        return Verdict("not_sent", failure_code="processing_error", message=str(exc) or None)


async def cascade(p: Payments, origin: Origin, charge: Record) -> Record | None:
    """Fail an attempt that never reached its PSP and open a new one at the next routing
    candidate, in one transaction; the intent stays ``processing``. None when no candidate is
    left. Only for ``not_sent``: after an unknown outcome a second PSP could charge twice."""
    candidates: list[str] = charge["routing"].get("candidates", [])
    tried = charge["routing"].get("tried", [charge["connector"]])
    left = [c for c in candidates if c not in tried]
    if not left:
        return None
    async with p.db.transaction() as conn:
        intent = await repository.get(
            conn,
            "payment_intents",
            origin.merchant_id,
            origin.livemode,
            charge["intent_id"],
            for_update=True,
        )
        current = await repository.get(
            conn, "charges", origin.merchant_id, origin.livemode, charge["id"], for_update=True
        )
        if intent is None or current is None or current["status"] != "pending":
            return None
        await repository.update(
            conn,
            "charges",
            origin.merchant_id,
            charge["id"],
            {
                "status": "failed",
                "outcome": "not_sent",
                "failure_code": "processing_error",
                "failure_message": "The payment processor could not be reached.",
            },
        )
        nxt = await repository.insert(
            conn,
            "charges",
            {
                **{
                    k: current[k]
                    for k in (
                        "merchant_id",
                        "livemode",
                        "intent_id",
                        "amount",
                        "currency",
                        "capture",
                        "payment_method_id",
                        "payment_method_details",
                        "customer_id",
                        "description",
                        "metadata",
                        "idempotency_key",
                    )
                },
                "id": new_id("ch"),
                "created_at": clock.now(),
                "status": "pending",
                "outcome": "pending",
                "connector": left[0],
                "routing": {
                    **charge["routing"],
                    "connector": left[0],
                    "tried": [*tried, left[0]],
                    "reason": f"cascade: {charge['connector']} unreachable",
                },
            },
        )
        await repository.update(
            conn, "payment_intents", origin.merchant_id, intent["id"], {"latest_charge": nxt["id"]}
        )
    return nxt


async def settle(
    p: Payments,
    origin: Origin,
    charge_id: str,
    verdict: Verdict,
    idem: IdempotencyKey | None = None,
) -> tuple[dict[str, Any], CardError | None]:
    """Commit an attempt's outcome (the saga's second transaction): charge and intent state,
    ledger transfers for a capture, events, and the response an idempotent retry replays.
    Returns the intent object and, for a failed attempt, the card error to answer with."""
    async with p.db.transaction() as conn:
        charge = await repository.get(
            conn, "charges", origin.merchant_id, origin.livemode, charge_id, for_update=True
        )
        if charge is None:
            raise ResourceMissing("charge", charge_id)
        intent = await repository.get(
            conn,
            "payment_intents",
            origin.merchant_id,
            origin.livemode,
            charge["intent_id"],
            for_update=True,
        )
        assert intent is not None
        if (
            charge["status"] != "pending"
            or charge["outcome"] == verdict.outcome == "unknown"
            or (verdict.outcome == "requires_action" and intent["status"] != S.PROCESSING)
        ):
            # Settled already (a webhook, an inquiry or a retry got there first).
            return intent_object(intent), _error_for(intent, charge)
        intent, charge = await _apply(p, conn, origin, intent, charge, verdict)
        obj = intent_object(intent)
        error = _error_for(intent, charge)
        if idem is not None or charge["idempotency_key"]:
            key = idem or await _stored_key(origin, charge)
            if verdict.outcome != "unknown":
                body = error.body() if error else obj
                await idempotency.store_response(conn, key, error.status if error else 200, body)
    return obj, error


async def _stored_key(origin: Origin, charge: Record) -> IdempotencyKey | None:
    """The idempotency record of the request that began this attempt (for a recovery job)."""
    if not charge["idempotency_key"]:
        return None
    return IdempotencyKey(
        origin.merchant_id,
        origin.livemode,
        charge["idempotency_key"],
        b"",
        origin.request_id or "",
        timedelta(hours=24),
    )


def _error_for(intent: Record, charge: Record) -> CardError | None:
    if charge["status"] != "failed" or intent["latest_charge"] != charge["id"]:
        return None
    error = intent["last_payment_error"] or {}
    return CardError(
        error.get("message") or "Your card was declined.",
        code=error.get("code", "card_declined"),
        decline_code=error.get("decline_code"),
        intent=intent_object(intent),
        charge_id=charge["id"],
        payment_method=charge["payment_method_id"],
    )


async def _apply(
    p: Payments,
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    v: Verdict,
) -> tuple[Record, Record]:
    now = clock.now()
    m, lm = origin.merchant_id, origin.livemode
    if v.outcome == "unknown":
        charge = await repository.update(conn, "charges", m, charge["id"], {"outcome": "unknown"})
        await jobs.defer(
            conn,
            "payments:resolve_charge",
            {"merchant_id": m, "livemode": lm, "charge_id": charge["id"]},
            scheduled_at=now + INQUIRY_BACKOFF[0],
            queueing_lock=f"resolve:{charge['id']}",
        )
        return intent, charge
    if v.outcome == "requires_action":
        charge = await repository.update(
            conn,
            "charges",
            m,
            charge["id"],
            {"outcome": "requires_action", "psp_reference": v.psp_reference},
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
                    "redirect_to_url": {"url": v.redirect_url, "return_url": intent["return_url"]},
                },
            },
        )
        await emit(conn, origin, "payment_intent.requires_action", intent_object(intent))
        return intent, charge
    if v.outcome in ("declined", "not_sent"):
        code = v.failure_code or "card_declined"
        message = (
            v.message
            if v.outcome == "declined" and v.message
            else _MESSAGES.get(code, "Your card was declined.")
        )
        charge = await repository.update(
            conn,
            "charges",
            m,
            charge["id"],
            {
                "status": "failed",
                "outcome": v.outcome,
                "psp_reference": v.psp_reference,
                "failure_code": code,
                "failure_message": message,
                "decline_code": v.decline_code,
            },
        )
        error: dict[str, Any] = {
            "type": "card_error",
            "code": code,
            "message": message,
            "charge": charge["id"],
            "payment_method": {"id": charge["payment_method_id"], "object": "payment_method"},
        }
        if v.decline_code:
            error["decline_code"] = v.decline_code
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
    if v.outcome == "authorized":
        # Also for an automatic-capture attempt the PSP only authorised: no money is booked
        # for a capture that did not happen; the intent waits for a capture instead.
        charge = await repository.update(
            conn,
            "charges",
            m,
            charge["id"],
            {"status": "succeeded", "outcome": "authorized", "psp_reference": v.psp_reference},
        )
        intent = await move(
            conn,
            intent,
            S.REQUIRES_CAPTURE,
            origin,
            "confirm",
            {"operation": None, "amount_capturable": intent["amount"], "authorized_at": now},
        )
        await emit(conn, origin, "charge.succeeded", charge_object(charge))
        await emit(conn, origin, "payment_intent.amount_capturable_updated", intent_object(intent))
        return intent, charge
    # Captured: a sale.
    txn, fee = await money.record_capture(
        conn,
        merchant_id=m,
        livemode=lm,
        charge_id=charge["id"],
        connector=charge["connector"],
        amount=charge["amount"],
        currency=charge["currency"],
        now=now,
    )
    charge = await repository.update(
        conn,
        "charges",
        m,
        charge["id"],
        {
            "status": "succeeded",
            "outcome": "captured",
            "psp_reference": v.psp_reference,
            "captured": True,
            "amount_captured": charge["amount"],
            "fee": fee,
            "balance_transaction": txn,
        },
    )
    intent = await move(
        conn,
        intent,
        S.SUCCEEDED,
        origin,
        "confirm",
        {"operation": None, "amount_received": charge["amount"], "amount_capturable": 0},
    )
    await emit(conn, origin, "charge.succeeded", charge_object(charge))
    await emit(conn, origin, "payment_intent.succeeded", intent_object(intent))
    return intent, charge


async def resolve_charge(p: Payments, merchant_id: str, livemode: bool, charge_id: str) -> str:
    """Finish an attempt whose outcome is unknown by asking its PSP (status inquiry by our
    reference). Returns the outcome now recorded; ``unknown`` means ask again later."""
    async with p.db.connection() as conn:
        charge = await repository.get(conn, "charges", merchant_id, livemode, charge_id)
    if charge is None or charge["status"] != "pending" or charge["outcome"] == "requires_action":
        return charge["outcome"] if charge else "missing"
    origin = Origin(merchant_id, livemode, "system")
    try:
        status = await p.connectors.get(charge["connector"]).status(charge_id)
    except ConnectorError:
        verdict = Verdict("unknown")
    else:
        verdict = _verdict_of_status(status.state, charge, status)
    if verdict.outcome == "unknown":
        await _schedule_inquiry(p, origin, charge)
        return "unknown"
    await settle(p, origin, charge_id, verdict)
    return verdict.outcome


def _verdict_of_status(state: PaymentState, charge: Record, status: Any) -> Verdict:
    if state is PaymentState.NOT_FOUND:
        # The PSP never saw our reference: the request was lost before it arrived.
        return Verdict("not_sent", failure_code="processing_error")
    if state is PaymentState.CAPTURED:
        return Verdict("captured", status.psp_reference)
    if state is PaymentState.AUTHORIZED:
        return Verdict("authorized", status.psp_reference)
    if state is PaymentState.DECLINED:
        return Verdict(
            "declined",
            status.psp_reference,
            status.failure_code or "card_declined",
            status.decline_code,
        )
    if state is PaymentState.VOIDED:
        return Verdict("declined", status.psp_reference, "processing_error")
    return Verdict("unknown")


async def _schedule_inquiry(p: Payments, origin: Origin, charge: Record) -> None:
    async with p.db.transaction() as conn:
        row = await repository.update(
            conn,
            "charges",
            origin.merchant_id,
            charge["id"],
            {"inquiries": charge["inquiries"] + 1, "outcome": "unknown"},
        )
        n = row["inquiries"]
        # Past the schedule it keeps asking daily (and the operator sees it in the sweep).
        delay = INQUIRY_BACKOFF[min(n, len(INQUIRY_BACKOFF) - 1)]
        await jobs.defer(
            conn,
            "payments:resolve_charge",
            {
                "merchant_id": origin.merchant_id,
                "livemode": origin.livemode,
                "charge_id": charge["id"],
            },
            scheduled_at=clock.now() + delay,
            queueing_lock=f"resolve:{charge['id']}:{n}",
        )
