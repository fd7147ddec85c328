"""Authorisations nobody captured: voided at the PSP and canceled after seven days, as Stripe
does, so the customer's funds are not held forever."""

from __future__ import annotations

from datetime import timedelta

from kassa.connectors.base import ConnectorError, ModificationOutcome, ModificationRequest
from kassa.core import clock
from kassa.payments import repository
from kassa.payments.schemas import intent_object
from kassa.payments.service.context import Origin, Payments, emit
from kassa.payments.service.transitions import move
from kassa.payments.states import IntentStatus

AUTHORIZATION_LIFETIME = timedelta(days=7)


async def expire_authorization(
    p: Payments, merchant_id: str, livemode: bool, intent_id: str
) -> bool:
    """Void and cancel one stale authorisation (no money was booked for it). Returns whether
    it was canceled; a PSP that does not answer leaves it for the next run."""
    origin = Origin(merchant_id, livemode, "system")
    async with p.db.transaction() as conn:
        intent = await repository.get(
            conn, "payment_intents", merchant_id, livemode, intent_id, for_update=True
        )
        if (
            intent is None
            or intent["status"] != IntentStatus.REQUIRES_CAPTURE
            or intent["operation"] is not None
        ):
            return False
        await repository.update(
            conn, "payment_intents", merchant_id, intent_id, {"operation": "expire"}
        )
        charge = await repository.get(
            conn, "charges", merchant_id, livemode, intent["latest_charge"]
        )
    assert charge is not None
    try:
        result = await p.connectors.get(charge["connector"]).void(
            ModificationRequest(
                reference=f"{charge['id']}-void",
                psp_reference=charge["psp_reference"],
                amount=charge["amount"],
                currency=charge["currency"],
            )
        )
        voided = result.outcome is not ModificationOutcome.FAILED
    except ConnectorError:
        voided = False
    async with p.db.transaction() as conn:
        intent = await repository.get(
            conn, "payment_intents", merchant_id, livemode, intent_id, for_update=True
        )
        assert intent is not None
        if not voided:
            await repository.update(
                conn, "payment_intents", merchant_id, intent_id, {"operation": None}
            )
            return False
        intent = await move(
            conn,
            intent,
            IntentStatus.CANCELED,
            origin,
            "cancel",
            {
                "operation": None,
                "amount_capturable": 0,
                "canceled_at": clock.now(),
                "cancellation_reason": "automatic",
            },
        )
        await emit(conn, origin, "payment_intent.canceled", intent_object(intent))
    return True


async def expire_authorizations(p: Payments, limit: int = 500) -> int:
    """Expire every authorisation older than seven days; returns how many were canceled."""
    async with p.db.connection() as conn:
        rows = await repository.stale_authorizations(
            conn, clock.now() - AUTHORIZATION_LIFETIME, limit
        )
    done = 0
    for row in rows:
        done += await expire_authorization(p, row["merchant_id"], row["livemode"], row["id"])
    return done
