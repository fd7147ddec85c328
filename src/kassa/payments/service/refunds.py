"""Refunds: a part or all of a captured charge goes back to the card, never more than remains."""

from __future__ import annotations

from typing import Any

from kassa.connectors.base import (
    ConnectorError,
    ModificationOutcome,
    ModificationRequest,
    OutcomeUnknown,
)
from kassa.core import clock, jobs
from kassa.core.db import Connection
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http import idempotency
from kassa.core.http.context import Caller
from kassa.core.http.idempotency import IdempotencyKey
from kassa.core.http.pagination import list_object
from kassa.core.http.params import merge_metadata
from kassa.core.ids import new_id
from kassa.payments import repository
from kassa.payments.schemas import RefundCreate, RefundList, charge_object, refund_object
from kassa.payments.service import attempts, money
from kassa.payments.service.context import Origin, Payments, emit
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
        result = await p.connectors.get(charge["connector"]).refund(
            ModificationRequest(
                reference=refund["id"],
                psp_reference=charge["psp_reference"],
                amount=amount,
                currency=charge["currency"],
            )
        )
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
        result = await p.connectors.get(charge["connector"]).refund(
            ModificationRequest(
                reference=refund["id"],
                psp_reference=charge["psp_reference"],
                amount=refund["amount"],
                currency=refund["currency"],
            )
        )
    except OutcomeUnknown:
        async with p.db.transaction() as conn:
            await _schedule_resend(conn, merchant_id, livemode, refund_id, attempt)
        return "pending"
    except ConnectorError as exc:
        obj = await _finish(
            p,
            Origin(merchant_id, livemode, "system"),
            None,
            refund_id,
            ModificationOutcome.FAILED,
            None,
            str(exc) or None,
        )
        return str(obj["status"])
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
    m, lm = origin.merchant_id, origin.livemode
    now = clock.now()
    async with p.db.transaction() as conn:
        refund = await repository.get(conn, "refunds", m, lm, refund_id, for_update=True)
        assert refund is not None
        if refund["outcome"] != "pending":
            return refund_object(refund)  # finished already (a resend and a retry raced)
        charge = await repository.get(conn, "charges", m, lm, refund["charge_id"], for_update=True)
        assert charge is not None
        reserved = charge["amount_refunding"] - refund["amount"]
        if outcome is ModificationOutcome.FAILED:
            refund = await repository.update(
                conn,
                "refunds",
                m,
                refund_id,
                {
                    "status": "failed",
                    "outcome": "failed",
                    "psp_reference": psp_reference,
                    "failure_reason": message or "unknown",
                },
            )
            await repository.update(
                conn, "charges", m, charge["id"], {"amount_refunding": reserved}
            )
            await emit(conn, origin, "refund.failed", refund_object(refund))
        else:
            txn = await money.record_refund(
                conn,
                merchant_id=m,
                livemode=lm,
                refund_id=refund_id,
                charge_id=charge["id"],
                connector=charge["connector"],
                amount=refund["amount"],
                currency=refund["currency"],
                charge_fee=charge["fee"],
                charge_amount=charge["amount_captured"],
                now=now,
            )
            # A PSP that confirms refunds later (by webhook) leaves the refund pending; the
            # money is booked now because it is committed to go back.
            status = "succeeded" if outcome is ModificationOutcome.SUCCEEDED else "pending"
            refund = await repository.update(
                conn,
                "refunds",
                m,
                refund_id,
                {
                    "status": status,
                    # "accepted": the PSP took it and confirms later; "pending" would read
                    # as "no answer yet" and let a resend finish it twice.
                    "outcome": (
                        "accepted" if outcome is ModificationOutcome.PENDING else outcome.value
                    ),
                    "psp_reference": psp_reference,
                    "balance_transaction": txn,
                },
            )
            charge = await repository.update(
                conn,
                "charges",
                m,
                charge["id"],
                {
                    "amount_refunding": reserved,
                    "amount_refunded": charge["amount_refunded"] + refund["amount"],
                },
            )
            await emit(conn, origin, "refund.created", refund_object(refund))
            await emit(conn, origin, "charge.refunded", charge_object(charge))
        obj = refund_object(refund)
        await idempotency.store_response(conn, idem, 200, obj)
    return obj


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
