"""Wallet (``paypal``) and buy now, pay later (``klarna``) payments: the provider answers with
a page for the shopper (``requires_action``, ``next_action.redirect_to_url``); when the shopper
comes back (``redirect_api``) or the provider says they decided, Kassa reads the provider's
verdict — never the return URL's query — and captures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kassa.connectors.base import EventKind, MethodOutcome
from kassa.core import clock, jobs
from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.payments import repository
from kassa.payments.schemas import intent_object
from kassa.payments.service import method_attempts as attempts
from kassa.payments.service import transitions
from kassa.payments.service.context import Origin, Payments
from kassa.payments.service.transitions import move
from kassa.payments.states import IntentStatus

S = IntentStatus
# The provider's word that the shopper decided: verified by reading the verdict.
EVENT_KINDS = frozenset({EventKind.APPROVED, EventKind.DECLINED})


async def complete_redirect(
    p: Payments, origin: Origin, charge: Record, params: dict[str, str]
) -> str:
    """Finish a payment waiting for the shopper: move the intent to ``processing``, read the
    provider's verdict (capturing an approved payment) and commit it. A payment the shopper
    has not decided yet goes back to ``requires_action``; a finished one is left alone.

    Everything that can be refused (a charge that is not a wallet or BNPL payment, e.g. a
    3-D Secure card attempt sent to this return route; the request) is checked before the
    intent moves, and anything failing after the move puts it back to ``requires_action``:
    an intent never stays in ``processing`` with nobody to finish it."""
    if (charge["payment_method_details"] or {}).get("type") not in attempts.REDIRECT_TYPES:
        raise InvalidRequest(
            f"The charge {charge['id']} is not waiting for a wallet or buy now, pay later "
            "provider's page."
        )
    request = await attempts.method_request(p, origin, charge, open_vault=False)
    async with p.db.transaction() as conn:
        locked = await transitions.locked_charge(conn, origin, charge["id"])
        intent = await transitions.intent_of(conn, origin, locked)
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
            {"operation": "authenticate", "operation_started_at": clock.now(), "next_action": None},
        )
    try:
        result = await attempts.call(p, origin, locked, "complete", params=params, request=request)
        async with p.db.transaction() as conn:
            again = await transitions.locked_charge(conn, origin, charge["id"])
            intent = await transitions.intent_of(conn, origin, again)
            if result.outcome is MethodOutcome.REQUIRES_ACTION or attempts.unknown(result):
                # Not decided yet (or no answer): the shopper may still approve; put the
                # redirect back, and ask again later when the provider did not answer.
                intent = await move(
                    conn,
                    intent,
                    S.REQUIRES_ACTION,
                    origin,
                    "confirm",
                    {**transitions.IDLE, "next_action": redirect},
                )
                if attempts.unknown(result):
                    await attempts.schedule(conn, origin, again, timedelta(minutes=1))
                return str(again["outcome"])
            _, again = await attempts.apply(conn, origin, intent, again, result)
    except Exception:
        async with p.db.transaction() as conn:
            again = await transitions.locked_charge(conn, origin, charge["id"])
            intent = await transitions.intent_of(conn, origin, again)
            await transitions.back_to_action(conn, origin, intent, again, redirect)
        raise
    return str(again["outcome"])


async def verify_later(conn: Connection, charge: Record) -> str:
    """A shopper's decision announced by the provider: schedule ``resolve``, which reads the
    verdict from the provider and captures (a call no transaction may wait on)."""
    if charge["status"] != "pending":
        return f"no change ({charge['status']})"
    await jobs.defer(
        conn,
        attempts.RESOLVE_JOB,
        {
            "merchant_id": charge["merchant_id"],
            "livemode": charge["livemode"],
            "charge_id": charge["id"],
        },
        queueing_lock=f"async:{charge['id']}:webhook",
    )
    return "verification scheduled"


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
