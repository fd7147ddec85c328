"""Attempts through ``MethodConnector``s (bank debits, wallet, BNPL), the counterpart of
``attempts`` for cards: the provider request, the call (outside any transaction) and the
commit of its answer — state, ledger and events through the outcomes ``transitions`` shares
with cards, and the idempotent response — in one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kassa.connectors.base import (
    ConnectorError,
    MethodConnector,
    MethodOutcome,
    MethodRequest,
    MethodResult,
    NotSent,
    Rejected,
)
from kassa.connectors.registry import ConnectorRegistry
from kassa.core import clock, jobs
from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest
from kassa.core.http import idempotency
from kassa.payments import repository
from kassa.payments.errors import CardError
from kassa.payments.schemas import charge_object, intent_object
from kassa.payments.service import bank_debits, transitions
from kassa.payments.service.context import Origin, Payments, emit_all
from kassa.payments.service.transitions import move
from kassa.payments.states import IntentStatus
from kassa.vault import service as vault

S = IntentStatus
REDIRECT_TYPES = frozenset({"paypal", "klarna"})
ASYNC_TYPES = bank_debits.DEBIT_TYPES | REDIRECT_TYPES
RESOLVE_JOB = "payments:resolve_async_payment"

FAILURE_MESSAGES = {
    **bank_debits.FAILURE_MESSAGES,
    "payment_method_provider_decline": "The payment was declined by the payment provider.",
    "payment_intent_payment_attempt_failed": "The customer did not complete the payment.",
    "processing_error": "The payment provider could not be reached. Try again in a little bit.",
}


def method_connectors(p: Payments, pm_type: str, currency: str) -> list[str]:
    """The configured providers of a payment method type in a currency, preferred first."""
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


async def method_request(
    p: Payments, origin: Origin, charge: Record, *, open_vault: bool = True
) -> MethodRequest:
    """The provider request for an attempt; a bank account leaves the vault for it only.
    ``open_vault=False`` (completing a redirect) reads nothing from the vault: only a start
    needs the account or the shopper's email, and the payment method may be detached since."""
    pm_type = charge["payment_method_details"]["type"]
    account = None
    email = None
    if not open_vault:
        pass
    elif pm_type in bank_debits.DEBIT_TYPES:
        account = await bank_debits.bank_account(p, origin, charge["payment_method_id"])
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


async def call(
    p: Payments,
    origin: Origin,
    charge: Record,
    step: str,
    *,
    first: bool = False,
    request: MethodRequest | None = None,
    **kw: Any,
) -> MethodResult:
    """Call the provider outside any transaction. Only the ``first`` start of an attempt
    whose request certainly never reached the provider (``NotSent``) or that it refused
    outright (``Rejected``) fails the attempt: nothing was charged. Any other failure — an
    inquiry, a completion, a resent start, a rate limit, an unknown answer — is no verdict:
    the outcome stays unknown and is asked again later under the same reference."""
    connector = _connector(p, charge["connector"])
    try:
        if step == "start":
            return await connector.start(await method_request(p, origin, charge))
        if step == "complete":
            if request is None:
                request = await method_request(p, origin, charge, open_vault=False)
            return await connector.complete(request, charge["psp_reference"] or "", kw["params"])
        return await connector.inquire(charge["id"])
    except ConnectorError as exc:
        if step == "start" and first and isinstance(exc, NotSent | Rejected):
            return MethodResult(
                MethodOutcome.DECLINED,
                None,
                failure_code="processing_error",
                message=str(exc) or None,
                psp_code="not_sent",
            )
        return MethodResult(MethodOutcome.NOT_FOUND, None, psp_code="unknown")


def unknown(result: MethodResult) -> bool:
    """The provider did not answer: the outcome is unknown, not a verdict."""
    return result.outcome is MethodOutcome.NOT_FOUND and result.psp_code == "unknown"


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
        charge = await transitions.locked_charge(conn, origin, charge_id)
        intent = await transitions.intent_of(conn, origin, charge)
        intent, charge = await apply(conn, origin, intent, charge, result)
        obj = intent_object(intent)
        error = _error_for(intent, charge)
        if idem is not None:
            body = error.body() if error else obj
            await idempotency.store_response(conn, idem, error.status if error else 200, body)
    return obj, error


def _error_for(intent: Record, charge: Record) -> CardError | None:
    return transitions.error_for(
        intent, charge, "The payment failed.", "payment_method_provider_decline"
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
        code = result.failure_code or "debit_not_authorized"
        message = FAILURE_MESSAGES.get(code) or result.message
        return intent, await bank_debits.late_return(conn, origin, charge, code, message)
    if charge["status"] != "pending" or not current:
        return intent, charge
    if unknown(result):
        if charge["outcome"] == "pending":
            charge = await repository.update(
                conn, "charges", m, charge["id"], {"outcome": "unknown"}
            )
            await schedule(conn, origin, charge, timedelta(minutes=1))
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
                conn,
                "payment_intents",
                m,
                intent["id"],
                {**transitions.IDLE},
            )
            await emit_all(
                conn,
                origin,
                [
                    ("charge.pending", charge_object(charge)),
                    ("payment_intent.processing", intent_object(intent)),
                ],
            )
            await schedule(conn, origin, charge, bank_debits.INQUIRY_EVERY)
        return intent, charge
    if o is MethodOutcome.REQUIRES_ACTION:
        if S(intent["status"]) is not S.PROCESSING:
            return intent, charge  # still waiting for the shopper
        return await transitions.require_action(
            conn, origin, intent, charge, result.psp_reference, result.redirect_url
        )
    if o in (MethodOutcome.DECLINED, MethodOutcome.RETURNED, MethodOutcome.NOT_FOUND):
        return await _fail(conn, origin, intent, charge, result)
    if S(intent["status"]) is S.REQUIRES_ACTION:
        # Approved on the provider's page, learnt by notification or inquiry: through
        # ``processing`` as the state machine requires, each step audited.
        intent = await move(conn, intent, S.PROCESSING, origin, "confirm", {"next_action": None})
    changes = {
        "psp_reference": result.psp_reference or charge["psp_reference"],
        "payment_method_details": _with_details(charge, result),
    }
    now = clock.now()
    if o is MethodOutcome.AUTHORIZED:
        return await transitions.authorize(
            conn, origin, intent, charge, changes, now=now, intent_changes={"next_action": None}
        )
    # The money is the merchant's: a debit settled, a wallet or BNPL payment captured; a
    # BNPL provider's deferred payout makes it available only after that payout.
    return await transitions.capture(
        conn,
        origin,
        intent,
        charge,
        changes,
        now=now,
        available=available_on(now, result.settles_after),
        intent_changes={"next_action": None},
    )


def _with_details(charge: Record, result: MethodResult) -> dict[str, Any]:
    details: dict[str, Any] = dict(charge["payment_method_details"])
    t = details["type"]
    if result.details:
        details[t] = {**details[t], **{k: v for k, v in result.details.items() if k in details[t]}}
    return details


def available_on(now: datetime, after: timedelta | None) -> datetime | None:
    """When money the provider pays out ``after`` the capture becomes the merchant's: the
    midnight (UTC) following the payout. None: the usual settlement delay."""
    if after is None:
        return None
    day = (now + after).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


async def _fail(
    conn: Connection, origin: Origin, intent: Record, charge: Record, result: MethodResult
) -> tuple[Record, Record]:
    """The attempt failed (declined, cancelled by the shopper, debit returned before it
    settled): nothing was booked; the intent asks for another payment method."""
    code = result.failure_code or "payment_method_provider_decline"
    message = FAILURE_MESSAGES.get(code) or result.message or "The payment failed."
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
    changes = {
        "outcome": "returned" if result.outcome is MethodOutcome.RETURNED else "declined",
        "psp_reference": result.psp_reference or charge["psp_reference"],
        "failure_code": code,
        "failure_message": message,
    }
    return await transitions.fail(conn, origin, intent, charge, changes, error)


async def schedule(conn: Connection, origin: Origin, charge: Record, after: timedelta) -> None:
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
