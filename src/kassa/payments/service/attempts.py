"""The payment saga of DESIGN.md §4: an attempt (a ``charge``) is committed before the PSP is
called, no lock is held during the call, and the outcome — intent and charge state, ledger
transfers, events and the stored idempotent response — commits in one transaction after it.

An answer that never came (timeout, 5xx, a crash between the two transactions) leaves the
attempt ``pending`` with outcome ``unknown``; ``resolve_charge`` asks the PSP by our reference
and finishes the saga. Nothing is ever guessed."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from kassa.connectors import policy
from kassa.connectors.base import (
    AuthorizeOutcome,
    AuthorizeRequest,
    AuthorizeResult,
    Card,
    Connector,
    ConnectorError,
    NotSent,
    OutcomeUnknown,
    PaymentState,
    RateLimited,
)
from kassa.connectors.configuration import RetryConfig
from kassa.connectors.policy import Action, Resilience
from kassa.connectors.routing import RouteRequest
from kassa.core import clock, jobs, metrics
from kassa.core.db import Connection, Database, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import idempotency
from kassa.core.http.idempotency import IdempotencyKey
from kassa.core.ids import new_id
from kassa.payments import repository
from kassa.payments.errors import CardError
from kassa.payments.schemas import intent_object
from kassa.payments.service import transitions
from kassa.payments.service.context import Origin, Payments
from kassa.payments.service.transitions import move
from kassa.payments.states import CONFIRMABLE, IntentStatus, UnexpectedState
from kassa.vault import service as vault

S = IntentStatus
log = logging.getLogger(__name__)
# An attempt its PSP never saw is carried on at the next candidate if it is this recent;
# older, the shopper has likely moved on, and it fails so the merchant can ask again.
RESUME_WINDOW = timedelta(hours=1)
# Status inquiries for an unknown outcome, then a person looks (Kill Bill's janitor schedule):
# the first after INQUIRY_BACKOFF[0], each next one after the next delay; when the last one
# also learns nothing the attempt is flagged for review (``review_since``) and no more asked.
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
    # The PSP certainly did not charge and the error policy says the next routing candidate
    # may try (``intents._finish_attempt`` cascades); ``code`` is the policy code that decided.
    cascade: bool = False
    code: str | None = None


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


def check_payment_method_type(intent: Record, pm_type: str) -> None:
    """A 400 naming ``payment_method`` when the intent's ``payment_method_types`` leave out
    this payment method's type (no list: any type Kassa takes)."""
    allowed = intent["payment_method_types"]
    if allowed is not None and pm_type not in allowed:
        raise InvalidRequest(
            f"The PaymentMethod provided ({pm_type}) is not allowed for this PaymentIntent. "
            f"Use a PaymentMethod of one of these types: {', '.join(allowed)}.",
            code="payment_intent_incompatible_payment_method",
            param="payment_method",
        )


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
    check_payment_method_type(intent, pm.get("type") or "card")
    if intent["customer_id"] and pm.get("customer") not in (None, intent["customer_id"]):
        raise InvalidRequest(
            f"The provided PaymentMethod {pm_id} belongs to another customer.",
            param="payment_method",
        )
    card = pm["card"]
    decision = await p.connectors.route(
        conn,
        origin.merchant_id,
        origin.livemode,
        RouteRequest(
            currency=intent["currency"],
            brand=card["brand"],
            amount=intent["amount"],
            country=card.get("country"),
            payment_method_type=pm.get("type") or "card",
        ),
    )
    candidates = decision.candidates
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
            "routing": decision.record(),
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
            "operation_started_at": clock.now(),
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


_NO_RESILIENCE = Resilience(None, policy.ErrorPolicy(None))


def resolver_lock(charge_id: str) -> str:
    """The job lock every resolver of one attempt takes: two inquiries that run at once
    could see different answers (one "not found", one "captured") and act on both."""
    return f"charge:{charge_id}"


def resilience_of(p: Payments) -> Resilience:
    """The process's breakers and error policy (code defaults only when none was set up)."""
    return p.resilience or _NO_RESILIENCE


async def call_psp(
    p: Payments,
    origin: Origin,
    intent: Record,
    charge: Record,
    request: AuthorizeRequest | None = None,
) -> Verdict:
    """Ask the routed PSP to authorise (and, for automatic capture, capture) the attempt.
    Runs outside any transaction and moves no money.

    Behind the connector's circuit breaker (open: nothing is sent); failures are retried
    under the same reference with backoff and full jitter within the connector's budget, and
    ``Retry-After`` is honoured when it fits, as the error policy says. The verdict says
    ``cascade`` only when the PSP certainly did not charge: never once any try of this attempt
    may have reached the PSP without an answer. ``request``: the payment's earlier attempt's,
    to send again under this attempt's reference (the card, CVC included, is read once)."""
    if request is None:
        request = await authorize_request(p, origin, charge)
    else:
        request = replace(
            request,
            reference=charge["id"],
            return_url=authentication_return_url(p, charge["id"]),
        )
    name = charge["connector"]
    guard = resilience_of(p)
    budget = guard.retries(name)
    connector = p.connectors.get(name)
    started = time.monotonic()
    maybe_sent = False  # some try may have reached the PSP: its outcome is unknown
    tries = 0
    while True:
        try:
            result = await _authorize(guard, connector, name, request)
        except ConnectorError as exc:
            code = policy.code_of(exc)
            maybe_sent = maybe_sent or code in policy.UNKNOWN_CLASSES
            action, _ = await guard.policy.action(name, code)
            wait = _retry_wait(exc, action, tries, budget, started)
            if wait is not None:
                metrics.CONNECTOR_RETRIES.labels(name, code).inc()
                tries += 1
                await asyncio.sleep(wait)
                continue
            if maybe_sent:
                # Whatever this try said, an earlier one may have been applied: only the
                # status inquiry may decide, and a second PSP must not be asked.
                return Verdict("unknown", code=code)
            # The request never reached the PSP, or the PSP refused it outright: nothing was
            # charged, so the attempt can fail safely (and cascade unless told to stop).
            return Verdict(
                "not_sent",
                failure_code="processing_error",
                message=str(exc) or None,
                cascade=action is not Action.STOP,
                code=code,
            )
        verdict = verdict_of(result)
        if verdict.outcome == "declined":
            action, code = await guard.policy.action(
                name, verdict.decline_code, verdict.failure_code
            )
            # A decline after a try whose answer was lost is not the whole story: that try
            # may have been applied, so this attempt is not cascaded either.
            verdict = replace(
                verdict, cascade=action is Action.CASCADE and not maybe_sent, code=code
            )
        return verdict


async def attempt(
    p: Payments, origin: Origin, intent: Record, charge: Record
) -> tuple[Record, Verdict]:
    """Call the routed PSP for an attempt and, while the PSP certainly did not charge (never
    reached, or a soft decline the error policy cascades), move down the routing candidates,
    each as a new attempt. Returns the last attempt and its verdict, for ``settle``. Moves no
    money."""
    # The card leaves the vault once per payment: its CVC can be read only once, and the
    # next candidate deserves it as much as the first.
    request = await authorize_request(p, origin, charge)
    verdict = await call_psp(p, origin, intent, charge, request)
    while verdict.cascade:
        nxt = await cascade(p, origin, charge, verdict)
        if nxt is None:
            break
        charge = nxt
        verdict = await call_psp(p, origin, intent, charge, request)
    return charge, verdict


async def _authorize(
    guard: Resilience, connector: Connector, name: str, request: AuthorizeRequest
) -> AuthorizeResult:
    """One authorisation through the breaker (``BreakerOpen`` when it is open), its result
    counted: unsent requests and unknown outcomes are the PSP failing; any answer, a decline
    or a 429 included, is the PSP working."""
    ticket = await guard.breakers.admit(name) if guard.breakers else None
    try:
        result = await connector.authorize(request)
    except (NotSent, OutcomeUnknown) as exc:
        if guard.breakers and ticket:
            await guard.breakers.record(ticket, True, policy.code_of(exc))
        raise
    except ConnectorError:
        if guard.breakers and ticket:
            await guard.breakers.record(ticket, False)
        raise
    # Cancelled (a client gone, a shutdown) records nothing: it says nothing about the PSP,
    # and a probe's slot lapses at ``probe_until``.
    if guard.breakers and ticket:
        await guard.breakers.record(ticket, False)
    return result


def _retry_wait(
    exc: ConnectorError, action: Action, tries: int, budget: RetryConfig, started: float
) -> float | None:
    """Seconds to wait before resending, or None when the policy, the number of retries or
    the time budget says not to."""
    if action is not Action.RETRY or tries >= budget.max_retries:
        return None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        wait = exc.retry_after  # the PSP said when; sooner would be hammering it
    else:
        wait = policy.backoff(tries, budget.base_delay_s, budget.max_delay_s, random.random())
    if time.monotonic() - started + wait > budget.budget_s:
        return None
    return wait


async def cascade(
    p: Payments, origin: Origin, charge: Record, verdict: Verdict | None = None
) -> Record | None:
    """Fail an attempt the PSP certainly did not charge (never reached it, or declined it with
    a code the error policy cascades) and open a new one at the next routing candidate, in one
    transaction; the intent stays ``processing`` and no money moves. None when no candidate is
    left. Never after an unknown outcome: a second PSP could charge twice."""
    verdict = verdict or Verdict("not_sent", failure_code="processing_error", code="not_sent")
    if verdict.outcome not in ("not_sent", "declined"):
        raise ValueError(f"cannot cascade after outcome {verdict.outcome!r}")
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
        code = verdict.failure_code or "processing_error"
        await repository.update(
            conn,
            "charges",
            origin.merchant_id,
            charge["id"],
            {
                "status": "failed",
                "outcome": verdict.outcome,
                "psp_reference": verdict.psp_reference,
                "failure_code": code,
                "failure_message": (
                    "The payment processor could not be reached."
                    if verdict.outcome == "not_sent"
                    else verdict.message or _MESSAGES.get(code, "Your card was declined.")
                ),
                "decline_code": verdict.decline_code,
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
                    "reason": f"cascade: {charge['connector']} {_why(verdict)}",
                },
            },
        )
        await repository.update(
            conn, "payment_intents", origin.merchant_id, intent["id"], {"latest_charge": nxt["id"]}
        )
    metrics.PAYMENT_CASCADES.labels(charge["connector"], verdict.code or verdict.outcome).inc()
    if verdict.outcome == "declined":
        # A soft decline is a failure of that route too: success-rate routing must see it,
        # or a PSP that declines often would keep ranking first on its approvals alone.
        card = charge["payment_method_details"] or {}
        p.connectors.record_outcome(
            charge["connector"], card.get("brand"), card.get("country"), verdict.outcome
        )
    return nxt


def _why(verdict: Verdict) -> str:
    if verdict.outcome == "declined":
        return f"declined ({verdict.code or verdict.failure_code})"
    if verdict.code == policy.BREAKER_OPEN:
        return "circuit breaker open"
    if verdict.code == policy.RATE_LIMITED:
        return "rate limited"
    if verdict.code == policy.REJECTED:
        return "refused the request"
    return "unreachable"


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
        intent = await transitions.intent_of(conn, origin, charge)
        if (
            charge["status"] != "pending"
            or charge["outcome"] == verdict.outcome == "unknown"
            or (verdict.outcome == "requires_action" and intent["status"] != S.PROCESSING)
        ):
            # Settled already (a webhook, an inquiry or a retry got there first).
            if charge["status"] == "failed" and verdict.outcome in ("authorized", "captured"):
                await _flag_late_success(conn, origin, charge, verdict)
            return intent_object(intent), _error_for(intent, charge)
        intent, charge = await _apply(p, conn, origin, intent, charge, verdict)
        card = charge["payment_method_details"] or {}
        p.connectors.record_outcome(
            charge["connector"], card.get("brand"), card.get("country"), verdict.outcome
        )
        obj = intent_object(intent)
        error = _error_for(intent, charge)
        if idem is not None or charge["idempotency_key"]:
            key = idem or await _stored_key(origin, charge)
            if verdict.outcome != "unknown":
                body = error.body() if error else obj
                await idempotency.store_response(
                    conn,
                    key,
                    error.status if error else 200,
                    body,
                    # A job finishing it: only the claim of the request that began it (the
                    # key may have expired and been used again since).
                    claimed_by=None if idem is not None else charge["created_at"],
                )
    return obj, error


async def _flag_late_success(
    conn: Connection, origin: Origin, charge: Record, verdict: Verdict
) -> None:
    """The PSP says it took the money for an attempt already failed here (two resolvers
    crossed: one saw "not found", another the payment): nothing is booked behind the books'
    back, but a person must void or refund it at the PSP. Flags the attempt for review."""
    if charge["review_since"] is not None:
        return
    await repository.update(
        conn, "charges", origin.merchant_id, charge["id"], {"review_since": clock.now()}
    )
    metrics.CHARGES_FLAGGED.inc()
    log.warning(
        "charge %s (%s): the PSP reports %s (%s) for an attempt already failed; flagged for "
        "review: void or refund it there",
        charge["id"],
        charge["connector"],
        verdict.outcome,
        verdict.psp_reference,
    )


async def _stored_key(origin: Origin, charge: Record) -> IdempotencyKey | None:
    """The idempotency record of the request that began this attempt (for a recovery job)."""
    return idempotency.of_request(origin.merchant_id, origin.livemode, charge["idempotency_key"])


def _error_for(intent: Record, charge: Record) -> CardError | None:
    return transitions.error_for(intent, charge, "Your card was declined.", "card_declined")


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
            lock=resolver_lock(charge["id"]),
        )
        return intent, charge
    if v.outcome == "requires_action":
        return await transitions.require_action(
            conn, origin, intent, charge, v.psp_reference, v.redirect_url
        )
    if v.outcome in ("declined", "not_sent"):
        code = v.failure_code or "card_declined"
        message = (
            v.message
            if v.outcome == "declined" and v.message
            else _MESSAGES.get(code, "Your card was declined.")
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
        changes = {
            "outcome": v.outcome,
            "psp_reference": v.psp_reference,
            "failure_code": code,
            "failure_message": message,
            "decline_code": v.decline_code,
        }
        return await transitions.fail(conn, origin, intent, charge, changes, error)
    if v.outcome == "authorized":
        # Also for an automatic-capture attempt the PSP only authorised: no money is booked
        # for a capture that did not happen; the intent waits for a capture instead.
        return await transitions.authorize(
            conn, origin, intent, charge, {"psp_reference": v.psp_reference}, now=now
        )
    # Captured: a sale.
    return await transitions.capture(
        conn, origin, intent, charge, {"psp_reference": v.psp_reference}, now=now
    )


async def resolve_charge(p: Payments, merchant_id: str, livemode: bool, charge_id: str) -> str:
    """Finish an attempt whose outcome is unknown by asking its PSP (status inquiry by our
    reference), booking the capture if the PSP took the money, failing the attempt if it never
    saw it. Returns the outcome now recorded; ``unknown`` means ask again later (or, past the
    inquiry schedule, that the attempt now waits for an operator)."""
    async with p.db.connection() as conn:
        charge = await repository.get(conn, "charges", merchant_id, livemode, charge_id)
    if charge is None or charge["status"] != "pending" or charge["outcome"] == "requires_action":
        return charge["outcome"] if charge else "missing"
    origin = Origin(merchant_id, livemode, "system")
    try:
        connector = p.connectors.get(charge["connector"])
    except LookupError:
        # Not configured in this process: nobody here can ask; leave it for one that can.
        log.warning("charge %s: connector %s is not configured", charge_id, charge["connector"])
        return "unknown"
    try:
        status = await connector.status(charge_id)
    except ConnectorError:
        verdict = Verdict("unknown")
    else:
        verdict = _verdict_of_status(status.state, charge, status)
    if verdict.outcome == "unknown":
        await _schedule_inquiry(p, origin, charge)
        return "unknown"
    if verdict.outcome == "not_sent" and clock.now() - charge["created_at"] <= RESUME_WINDOW:
        resumed = await _resume(p, origin, charge, verdict)
        if resumed is not None:
            return resumed
    await settle(p, origin, charge_id, verdict)
    return verdict.outcome


async def _resume(p: Payments, origin: Origin, charge: Record, verdict: Verdict) -> str | None:
    """Carry on a payment whose attempt the PSP turns out never to have seen (a connection cut
    after sending, in an outage): the next routing candidate gets it as a new attempt, as it
    would have had the failure been visible at the time. None when the error policy stops it
    or no candidate is left; the attempt then fails as usual."""
    action, _ = await resilience_of(p).policy.action(charge["connector"], policy.NOT_SENT)
    if action is Action.STOP:
        return None
    nxt = await cascade(p, origin, charge, replace(verdict, code=policy.NOT_SENT))
    if nxt is None:
        return None
    async with p.db.connection() as conn:
        intent = await repository.get(
            conn, "payment_intents", origin.merchant_id, origin.livemode, nxt["intent_id"]
        )
    assert intent is not None
    nxt, outcome = await attempt(p, origin, intent, nxt)
    await settle(p, origin, nxt["id"], outcome)
    return outcome.outcome


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
    """Count an inquiry that learned nothing and schedule the next; after the last one on
    the schedule, flag the attempt for review instead of asking forever."""
    async with p.db.transaction() as conn:
        current = await repository.get(
            conn, "charges", origin.merchant_id, origin.livemode, charge["id"], for_update=True
        )
        if current is None or current["status"] != "pending":
            return  # settled meanwhile (a webhook, another inquiry)
        n = current["inquiries"] + 1
        changes: dict[str, Any] = {"inquiries": n, "outcome": "unknown"}
        if n >= len(INQUIRY_BACKOFF):
            if current["review_since"] is None:
                changes["review_since"] = clock.now()
                metrics.CHARGES_FLAGGED.inc()
                log.warning(
                    "charge %s (%s): outcome still unknown after %d inquiries; flagged for review",
                    charge["id"],
                    charge["connector"],
                    n,
                )
            await repository.update(conn, "charges", origin.merchant_id, charge["id"], changes)
            return
        await repository.update(conn, "charges", origin.merchant_id, charge["id"], changes)
        delay = INQUIRY_BACKOFF[n]
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
            lock=resolver_lock(charge["id"]),
        )


async def refresh_gauges(p: Payments) -> None:
    """Gauges of shared state for ``/metrics``: every breaker's state, attempts in review."""
    breakers = resilience_of(p).breakers
    if breakers is not None:
        await breakers.refresh()
    async with p.db.connection() as conn:
        metrics.CHARGES_IN_REVIEW.set(await repository.count_in_review(conn))


async def charges_in_review(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """Attempts flagged for review (``kassa payments unresolved``): no status inquiry on the
    schedule learned whether the customer was charged. Moves nothing."""
    async with db.connection() as conn:
        return [dict(r) for r in await repository.charges_in_review(conn, limit)]
