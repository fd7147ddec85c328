"""A capture or void between its two transactions: what ``capture_intent`` books once the PSP
captured (shared with the recovery), and the recovery of an operation a killed process left
unfinished.

A capture, cancel or seven-day expiry first commits ``payment_intents.operation`` (so no other
operation starts), then calls the PSP, then commits the outcome. A process that dies between
leaves the intent busy: ``recover_operation`` asks the PSP, by our reference, what it holds
and finishes or releases the operation."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from kassa.connectors.base import ConnectorError, MethodConnector, PaymentState
from kassa.core import clock
from kassa.core.db import Connection, Record
from kassa.core.http import idempotency
from kassa.core.http.params import merge_metadata
from kassa.payments import repository
from kassa.payments.schemas import charge_object, intent_object
from kassa.payments.service import expiry, method_attempts, money, transitions
from kassa.payments.service.context import Origin, Payments, emit_all
from kassa.payments.states import IntentStatus

S = IntentStatus
log = logging.getLogger(__name__)

# The operations the recovery finishes; ``confirm`` and ``authenticate`` belong to the
# attempt's saga, which its own sweep recovers (``jobs.recover_abandoned``).
RECOVERABLE = ("capture", "cancel", "expire")
# Longer than any capture or void can be in flight: the PSP call timeouts are capped well
# below it (``docs/connectors.md``), so the recovery never races a live request.
STALE_AFTER = timedelta(minutes=2)


async def deferred_payout(p: Payments, charge: Record) -> timedelta | None:
    """How long after a capture a redirect method's provider pays out (BNPL's deferred
    settlement, read from the captured payment as the automatic capture does); None for a
    card or a provider that pays out as usual."""
    pm_type = (charge["payment_method_details"] or {}).get("type")
    connector = p.connectors.get(charge["connector"])
    if pm_type not in method_attempts.REDIRECT_TYPES or not isinstance(connector, MethodConnector):
        return None
    return (await connector.inquire(charge["id"])).settles_after


async def book_capture(
    conn: Connection,
    origin: Origin,
    intent: Record,
    charge: Record,
    amount: int,
    *,
    now: datetime,
    settles_after: timedelta | None,
    remainder_released: bool,
    intent_changes: dict[str, Any] | None = None,
) -> tuple[Record, Record]:
    """The PSP captured ``amount`` of an authorised intent: book it (PSP clearing → merchant
    pending, fee to the platform, the charge's balance transaction), mark the charge captured,
    queue the release of an uncaptured remainder the PSP may keep, move the intent to
    ``succeeded`` and emit ``charge.captured`` and ``payment_intent.succeeded``. Locked rows,
    caller's transaction."""
    txn, fee = await money.record_capture(
        conn,
        merchant_id=origin.merchant_id,
        livemode=origin.livemode,
        charge_id=charge["id"],
        connector=charge["connector"],
        amount=amount,
        currency=charge["currency"],
        now=now,
        available=method_attempts.available_on(now, settles_after),
    )
    charge = await repository.update(
        conn,
        "charges",
        origin.merchant_id,
        charge["id"],
        {"captured": True, "amount_captured": amount, "fee": fee, "balance_transaction": txn},
    )
    if not remainder_released and amount < charge["amount"]:
        await expiry.schedule_release(conn, origin.merchant_id, origin.livemode, charge["id"])
    intent = await transitions.move(
        conn,
        intent,
        S.SUCCEEDED,
        origin,
        "capture",
        {
            **transitions.IDLE,
            "amount_received": amount,
            "amount_capturable": 0,
            **(intent_changes or {}),
        },
    )
    await emit_all(
        conn,
        origin,
        [
            ("charge.captured", charge_object(charge)),
            ("payment_intent.succeeded", intent_object(intent)),
        ],
    )
    return intent, charge


def _stale(intent: Record | None, age: timedelta) -> bool:
    return (
        intent is not None
        and intent["operation"] in RECOVERABLE
        and intent["operation_started_at"] is not None
        and intent["operation_started_at"] <= clock.now() - age
    )


async def recover_operation(
    p: Payments, merchant_id: str, livemode: bool, intent_id: str, age: timedelta = STALE_AFTER
) -> str:
    """Finish a capture, cancel or expiry that started more than ``age`` ago and never
    recorded its outcome, from what the charge's PSP holds under our reference:

    - capture: a captured amount is booked exactly as ``capture_intent`` books it (intent
      ``succeeded``); nothing captured: the operation is released, and the merchant's retry
      captures under the same PSP reference (``<charge>-capture``, which cannot capture twice);
    - cancel, expire: voided at the PSP: the intent is canceled as ``cancel_intent`` and the
      expiry cancel it; otherwise the operation is released.

    A PSP that does not answer leaves the intent busy for the next sweep. Returns what
    happened: ``captured``, ``canceled``, ``released``, ``unknown`` or why nothing was done."""
    async with p.db.connection() as conn:
        intent = await repository.get(conn, "payment_intents", merchant_id, livemode, intent_id)
        if intent is None or not _stale(intent, age):
            return "nothing to recover"
        charge = None
        if intent["latest_charge"]:
            charge = await repository.get(
                conn, "charges", merchant_id, livemode, intent["latest_charge"]
            )
    operation, started = intent["operation"], intent["operation_started_at"]
    status = None
    settles_after = None
    if charge is not None:
        try:
            status = await p.connectors.get(charge["connector"]).status(charge["id"])
            if operation == "capture" and status.amount_captured > 0:
                settles_after = await deferred_payout(p, charge)
        except ConnectorError as exc:
            log.warning(
                "intent %s: %s left unfinished; the PSP did not answer (%s), asked again later",
                intent_id,
                operation,
                exc,
            )
            return "unknown"
    origin = Origin(merchant_id, livemode, "system")
    now = clock.now()
    async with p.db.transaction() as conn:
        intent = await repository.get(
            conn, "payment_intents", merchant_id, livemode, intent_id, for_update=True
        )
        if (
            intent is None
            or intent["operation"] != operation
            or intent["operation_started_at"] != started
        ):
            return "finished meanwhile"
        authorized = intent["status"] == S.REQUIRES_CAPTURE
        # What the request that began a capture or cancel asked for; its retries replay what
        # is booked here. (An expiry is the job's own: no request.)
        request = (intent["operation_request"] or {}) if operation in ("capture", "cancel") else {}
        key = idempotency.of_request(merchant_id, livemode, request.get("idempotency_key"))
        if status is not None and charge is not None and authorized:
            if operation == "capture" and status.amount_captured > 0:
                captured = status.amount_captured
                if captured > intent["amount_capturable"]:
                    log.error(
                        "intent %s: the PSP captured %s, more than the %s capturable; left "
                        "busy for an operator",
                        intent_id,
                        captured,
                        intent["amount_capturable"],
                    )
                    return "review"
                locked = await transitions.locked_charge(conn, origin, charge["id"])
                booked, _ = await book_capture(
                    conn,
                    origin,
                    intent,
                    locked,
                    captured,
                    now=now,
                    settles_after=settles_after,
                    # Not known without the capture's answer: a release the PSP no longer
                    # needs is refused harmlessly (``expiry.release_remainder``).
                    remainder_released=False,
                    intent_changes=(
                        {"metadata": merge_metadata(intent["metadata"], request["metadata"], True)}
                        if "metadata" in request
                        else None
                    ),
                )
                await idempotency.store_response(
                    conn, key, 200, intent_object(booked), claimed_by=started
                )
                log.warning("intent %s: a capture left unrecorded was booked", intent_id)
                return "captured"
            if operation in ("cancel", "expire") and status.state is PaymentState.VOIDED:
                reason = (
                    "automatic" if operation == "expire" else request.get("cancellation_reason")
                )
                canceled = await transitions.cancel(conn, origin, intent, reason, now=now)
                await idempotency.store_response(
                    conn, key, 200, intent_object(canceled), claimed_by=started
                )
                log.warning("intent %s: a void left unrecorded was applied", intent_id)
                return "canceled"
        await repository.update(
            conn,
            "payment_intents",
            merchant_id,
            intent_id,
            {**transitions.IDLE},
        )
        # Nothing happened: the client's retry with the same key runs again.
        await idempotency.release(conn, key, claimed_by=started)
    log.warning("intent %s: %s left unfinished; released, nothing applied", intent_id, operation)
    return "released"
