"""3-D Secure: the shopper comes back from the challenge to Kassa, which finishes the
authorisation at the PSP and then sends the shopper on to the merchant's ``return_url``."""

from __future__ import annotations

from typing import Any

from kassa.connectors.base import ConnectorError, OutcomeUnknown
from kassa.core import clock
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.payments import repository
from kassa.payments.schemas import intent_object
from kassa.payments.service import attempts, transitions
from kassa.payments.service.attempts import Verdict, verdict_of
from kassa.payments.service.context import Origin, Payments
from kassa.payments.service.transitions import move
from kassa.payments.states import IntentStatus

S = IntentStatus


async def complete_authentication(
    p: Payments, charge_id: str, return_params: dict[str, str]
) -> tuple[dict[str, Any], str | None]:
    """Finish an attempt waiting for 3-D Secure with what the shopper brought back; on success
    the payment is authorised (and captured, for automatic capture) exactly as a confirm
    would. Returns the intent and the merchant's return URL. A second return changes nothing."""
    async with p.db.connection() as conn:
        charge = await repository.find_by_id(conn, "charges", charge_id)
    if charge is None:
        raise ResourceMissing("charge", charge_id)
    origin = Origin(charge["merchant_id"], charge["livemode"], "api")
    # Refused before the intent moves: a wallet or BNPL attempt sent to this route, or a card
    # the vault will not open (detached), leaves it waiting in ``requires_action``.
    # (A card's details are stored bare, without a ``type``.)
    if (charge["payment_method_details"] or {}).get("type", "card") != "card":
        raise InvalidRequest(f"The charge {charge_id} is not waiting for 3-D Secure.")
    waits = charge["outcome"] == "requires_action"
    request = await attempts.authorize_request(p, origin, charge) if waits else None
    async with p.db.transaction() as conn:
        intent = await transitions.intent_of(conn, origin, charge)
        waiting = (
            intent["status"] == S.REQUIRES_ACTION and intent["latest_charge"] == charge_id and waits
        )
        if not waiting or request is None:
            return intent_object(intent), intent["return_url"]
        redirect = intent["next_action"]
        intent = await move(
            conn,
            intent,
            S.PROCESSING,
            origin,
            "confirm",
            {"operation": "authenticate", "operation_started_at": clock.now(), "next_action": None},
        )
    try:
        try:
            result = await p.connectors.get(charge["connector"]).complete_authentication(
                request, charge["psp_reference"], return_params
            )
            verdict = verdict_of(result)
        except OutcomeUnknown:
            verdict = Verdict("unknown")
        except ConnectorError:
            verdict = Verdict("not_sent", failure_code="processing_error")
        obj, _error = await attempts.settle(p, origin, charge_id, verdict)
    except Exception:
        # Nothing committed a verdict: the intent waits for the shopper again.
        async with p.db.transaction() as conn:
            locked = await transitions.locked_charge(conn, origin, charge_id)
            intent = await transitions.intent_of(conn, origin, locked)
            await transitions.back_to_action(conn, origin, intent, locked, redirect)
        raise
    return obj, intent["return_url"]
