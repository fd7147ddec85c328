"""Authorisations nobody captured: voided at the PSP and canceled after seven days, as Stripe
does, so the customer's funds are not held forever; and the uncaptured remainder of a partial
capture, released at PSPs that keep it authorised."""

from __future__ import annotations

from datetime import timedelta

from kassa.connectors.base import (
    ConnectorError,
    ModificationOutcome,
    ModificationRequest,
    PaymentState,
)
from kassa.core import clock, jobs
from kassa.core.db import Connection
from kassa.payments import repository
from kassa.payments.service import transitions
from kassa.payments.service.context import Origin, Payments
from kassa.payments.states import IntentStatus

AUTHORIZATION_LIFETIME = timedelta(days=7)
# A remainder can only be voided once the PSP has applied the capture (a void first would
# close the authorisation and refuse the capture): look again this often, this many times.
RELEASE_RETRY = timedelta(minutes=1)
RELEASE_ATTEMPTS = 30


async def schedule_release(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    charge_id: str,
    attempt: int = 0,
    delay: timedelta = RELEASE_RETRY,
) -> None:
    """Queue the release of a partially captured charge's remainder, in the caller's
    transaction (the one booking the capture)."""
    await jobs.defer(
        conn,
        "payments:release_remainder",
        {
            "merchant_id": merchant_id,
            "livemode": livemode,
            "charge_id": charge_id,
            "attempt": attempt,
        },
        scheduled_at=clock.now() + delay,
        queueing_lock=f"release:{charge_id}:{attempt}",
    )


async def release_remainder(
    p: Payments, merchant_id: str, livemode: bool, charge_id: str, attempt: int = 0
) -> str:
    """Void what a final partial capture left authorised, so the shopper's bank releases it.
    Moves no money in the ledger (only captured amounts were booked). Returns what happened:
    ``requested`` (the void is sent under the reference ``<charge>-release``, so a repeat is
    harmless), ``waiting`` (the capture is not applied yet; asked again later), or why
    nothing was needed."""
    async with p.db.connection() as conn:
        charge = await repository.get(conn, "charges", merchant_id, livemode, charge_id)
    if charge is None or not charge["captured"] or charge["amount_captured"] >= charge["amount"]:
        return "nothing to release"
    connector = p.connectors.get(charge["connector"])
    try:
        status = await connector.status(charge_id)
        if (
            status.state is PaymentState.CAPTURED
            and status.amount_captured >= (charge["amount_captured"])
        ):
            result = await connector.void(
                ModificationRequest(
                    reference=f"{charge_id}-release",
                    psp_reference=charge["psp_reference"],
                    amount=charge["amount"] - charge["amount_captured"],
                    currency=charge["currency"],
                )
            )
            if result.outcome is ModificationOutcome.FAILED:
                return f"refused: {result.message or 'closed already'}"
            return "requested"
        if status.state is PaymentState.VOIDED:
            return "closed already"
    except ConnectorError:
        pass  # Asked again below: a release is worth retrying, never worth guessing.
    if attempt + 1 >= RELEASE_ATTEMPTS:
        return "gave up: the authorisation lapses at the PSP"
    async with p.db.transaction() as conn:
        await schedule_release(conn, merchant_id, livemode, charge_id, attempt + 1)
    return "waiting"


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
            conn,
            "payment_intents",
            merchant_id,
            intent_id,
            {"operation": "expire", "operation_started_at": clock.now(), "operation_request": None},
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
                conn,
                "payment_intents",
                merchant_id,
                intent_id,
                {**transitions.IDLE},
            )
            return False
        await transitions.cancel(conn, origin, intent, "automatic", now=clock.now())
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
