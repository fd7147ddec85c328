"""Refunds: a part or all of a captured charge goes back to the card, never more than remains.
A settled bank debit is refunded by a credit transfer back to the debited account
(``bank_debits.send_refund``): ``pending`` until the bank confirms it (notification, or the
daily ``payments:inquire_bank_refund``), then ``succeeded``, or ``failed`` and reversed."""

from __future__ import annotations

from typing import Any

from kassa.connectors.base import (
    ConnectorError,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
    OutcomeUnknown,
)
from kassa.core import clock, jobs
from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http import idempotency
from kassa.core.http.context import Caller
from kassa.core.http.idempotency import IdempotencyKey
from kassa.core.http.pagination import list_object
from kassa.core.http.params import merge_metadata
from kassa.core.ids import new_id
from kassa.payments import repository
from kassa.payments.schemas import RefundCreate, RefundList, refund_object
from kassa.payments.service import attempts, bank_debits, refund_outcomes
from kassa.payments.service.context import Origin, Payments
from kassa.payments.service.intents import origin_of

OBJECT = "refund"


async def create_refund(p: Payments, caller: Caller, params: RefundCreate) -> dict[str, Any]:
    """Send ``amount`` (default: all that remains) of a captured charge back to the card. The
    merchant's pending balance gives it back to the PSP; the fee is kept unless the merchant's
    plan says otherwise. Refunding more than remains is a 400 that changes nothing."""
    expansion.validate(OBJECT, params.expand)
    if bool(params.charge) == bool(params.payment_intent):
        raise InvalidRequest("Provide exactly one of charge or payment_intent.", param="charge")
    m, lm = caller.merchant_id, caller.livemode
    async with p.db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        charge_id = params.charge
        if params.payment_intent:
            intent = await repository.get(conn, "payment_intents", m, lm, params.payment_intent)
            if intent is None:
                raise ResourceMissing(
                    "payment_intent", params.payment_intent, param="payment_intent"
                )
            charge_id = intent["latest_charge"]
            if charge_id is None:
                raise InvalidRequest(
                    "This PaymentIntent has no charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
        assert charge_id is not None
        charge = await repository.get(conn, "charges", m, lm, charge_id, for_update=True)
        if charge is None:
            raise ResourceMissing("charge", charge_id, param="charge")
        named = "payment_intent" if params.payment_intent else "charge"
        if bank_debits.is_debit(charge) and charge["status"] == "pending":
            raise InvalidRequest(
                f"Charge {charge_id} is still processing: a bank debit can be refunded once "
                "it has succeeded.",
                code="charge_not_refundable",
                param=named,
            )
        if charge["captured"] and charge["status"] == "failed":
            raise InvalidRequest(
                f"Charge {charge_id} has failed: its bank debit was returned, and the money "
                "went back already.",
                code="charge_not_refundable",
                param=named,
            )
        if not charge["captured"]:
            raise InvalidRequest(
                f"Charge {charge_id} has not been captured.",
                code="charge_not_refundable",
                param="charge",
            )
        remaining = (
            charge["amount_captured"] - charge["amount_refunded"] - charge["amount_refunding"]
        )
        amount = params.amount or remaining
        if amount > remaining or remaining == 0:
            raise InvalidRequest(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining}).",
                code="amount_too_large",
                param="amount",
            )
        refund = await repository.insert(
            conn,
            "refunds",
            {
                "merchant_id": m,
                "id": new_id("re"),
                "livemode": lm,
                "charge_id": charge_id,
                "intent_id": charge["intent_id"],
                "created_at": clock.now(),
                "amount": amount,
                "currency": charge["currency"],
                "status": "pending",
                "reason": params.reason,
                "metadata": merge_metadata(
                    {}, params.metadata, "metadata" in params.model_fields_set
                ),
            },
        )
        await repository.update(
            conn, "charges", m, charge_id, {"amount_refunding": charge["amount_refunding"] + amount}
        )
    try:
        result = await _send(p, origin_of(caller), charge, refund["id"], amount)
        outcome = result.outcome
        psp_reference = result.psp_reference
        message = result.message
    except OutcomeUnknown:
        # The PSP may have it: the refund stays pending with its amount reserved, and a job
        # resends it under the same reference, which cannot refund twice.
        obj = refund_object(refund)
        async with p.db.transaction() as conn:
            await _schedule_resend(conn, m, lm, refund["id"], 0)
            await idempotency.store_response(conn, caller.idempotency, 200, obj)
        return await expansion.expand(p.db, obj, params.expand, m, lm)
    except ConnectorError as exc:
        outcome, psp_reference, message = ModificationOutcome.FAILED, None, str(exc) or None
    obj = await _finish(
        p, origin_of(caller), caller.idempotency, refund["id"], outcome, psp_reference, message
    )
    return await expansion.expand(p.db, obj, params.expand, m, lm)


async def _send(
    p: Payments, origin: Origin, charge: Record, refund_id: str, amount: int
) -> ModificationResult:
    """Ask for the refund: a bank debit's by credit transfer to the debited account, any other
    at the charge's PSP; either under the refund id (a resend cannot refund twice)."""
    if bank_debits.is_debit(charge):
        return await bank_debits.send_refund(p, origin, charge, refund_id, amount)
    return await p.connectors.get(charge["connector"]).refund(
        ModificationRequest(
            reference=refund_id,
            psp_reference=charge["psp_reference"],
            amount=amount,
            currency=charge["currency"],
        )
    )


async def _schedule_resend(
    conn: Connection, merchant_id: str, livemode: bool, refund_id: str, attempt: int
) -> None:
    delay = attempts.INQUIRY_BACKOFF[min(attempt, len(attempts.INQUIRY_BACKOFF) - 1)]
    await jobs.defer(
        conn,
        "payments:resend_refund",
        {
            "merchant_id": merchant_id,
            "livemode": livemode,
            "refund_id": refund_id,
            "attempt": attempt + 1,
        },
        scheduled_at=clock.now() + delay,
        queueing_lock=f"refund:{refund_id}:{attempt}",
    )


async def resend_refund(
    p: Payments, merchant_id: str, livemode: bool, refund_id: str, attempt: int = 1
) -> str:
    """Finish a refund whose PSP answer was lost by sending it again under the same reference
    (the PSP answers with the original outcome). Returns the refund's status."""
    async with p.db.connection() as conn:
        refund = await repository.get(conn, "refunds", merchant_id, livemode, refund_id)
        charge = (
            await repository.get(conn, "charges", merchant_id, livemode, refund["charge_id"])
            if refund
            else None
        )
    if refund is None or charge is None or refund["outcome"] != "pending":
        return refund["status"] if refund else "missing"
    try:
        # A bank is asked first: a credit it already holds under this reference is the answer
        # (resending to a detached payment method could not even name the account).
        result = (
            await bank_debits.refund_status(p, charge, refund_id)
            if bank_debits.is_debit(charge)
            else None
        )
        if result is None:
            result = await _send(
                p, Origin(merchant_id, livemode, "system"), charge, refund["id"], refund["amount"]
            )
    except ConnectorError:
        # The first request may have been carried out, so only a definite answer from the
        # PSP may decide this refund: an error now (unreachable, 429, a refusal of the
        # repeat) says nothing about it. Ask again on the schedule.
        async with p.db.transaction() as conn:
            await _schedule_resend(conn, merchant_id, livemode, refund_id, attempt)
        return "pending"
    obj = await _finish(
        p,
        Origin(merchant_id, livemode, "system"),
        None,
        refund_id,
        result.outcome,
        result.psp_reference,
        result.message,
    )
    return str(obj["status"])


async def _finish(
    p: Payments,
    origin: Origin,
    idem: IdempotencyKey | None,
    refund_id: str,
    outcome: ModificationOutcome,
    psp_reference: str | None,
    message: str | None,
) -> dict[str, Any]:
    """Commit a refund's outcome: the money goes back (or the reservation is released), the
    charge's refunded amount, the events and the idempotent response, in one transaction."""
    async with p.db.transaction() as conn:
        refund = await refund_outcomes.settle_refund(
            conn, origin, refund_id, outcome, psp_reference, message
        )
        obj = refund_object(refund)
        await idempotency.store_response(conn, idem, 200, obj)
    return obj


async def inquire_bank_refund(
    p: Payments, merchant_id: str, livemode: bool, refund_id: str, attempt: int = 1
) -> str:
    """Ask the bank about a debit's refund still ``pending`` (its notification may be lost):
    arrived → ``succeeded``; returned → ``failed`` and reversed, as the notification would
    have done; still in transit → ask again a day later. Returns the refund's status."""
    async with p.db.connection() as conn:
        refund = await repository.get(conn, "refunds", merchant_id, livemode, refund_id)
        charge = (
            await repository.get(conn, "charges", merchant_id, livemode, refund["charge_id"])
            if refund
            else None
        )
    if refund is None or charge is None:
        return "missing"
    if refund["status"] != "pending" or refund["outcome"] != "accepted":
        return str(refund["status"])  # decided, or still unanswered (``resend_refund``'s)
    try:
        result = await bank_debits.refund_status(p, charge, refund_id)
    except ConnectorError:
        result = None
    origin = Origin(merchant_id, livemode, "system")
    async with p.db.transaction() as conn:
        if result is None or result.outcome is ModificationOutcome.PENDING:
            await refund_outcomes.schedule_inquiry(conn, merchant_id, livemode, refund_id, attempt)
            return "pending"
        await refund_outcomes.refund_outcome(
            conn,
            origin,
            refund_id,
            result.outcome is ModificationOutcome.SUCCEEDED,
            result.message,
        )
        row = await repository.get(conn, "refunds", merchant_id, livemode, refund_id)
    assert row is not None
    return str(row["status"])


async def retrieve_refund(
    p: Payments, caller: Caller, refund_id: str, expand: list[str]
) -> dict[str, Any]:
    expansion.validate(OBJECT, expand)
    async with p.db.connection() as conn:
        row = await repository.get(conn, "refunds", caller.merchant_id, caller.livemode, refund_id)
    if row is None:
        raise ResourceMissing("refund", refund_id, param="refund")
    return await expansion.expand(
        p.db, refund_object(row), expand, caller.merchant_id, caller.livemode
    )


async def list_refunds(p: Payments, caller: Caller, params: RefundList) -> dict[str, Any]:
    expansion.validate(OBJECT, params.expand, is_list=True)
    async with p.db.connection() as conn:
        rows = await repository.list_page(
            conn,
            "refunds",
            caller.merchant_id,
            caller.livemode,
            params,
            {"charge_id": params.charge, "intent_id": params.payment_intent},
            params.created,
        )
    page, has_more = params.page(rows)
    result = list_object("/v1/refunds", page, has_more, refund_object)
    return await expansion.expand(p.db, result, params.expand, caller.merchant_id, caller.livemode)
