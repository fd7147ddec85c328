"""Payment intents through the API: create, retrieve, update, list, confirm, capture, cancel."""

from __future__ import annotations

from typing import Any

from kassa.connectors.base import (
    ConnectorError,
    ModificationOutcome,
    ModificationRequest,
)
from kassa.core import clock
from kassa.core.db import Connection, Record
from kassa.core.errors import ApiError, InvalidRequest, ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http import idempotency
from kassa.core.http.context import Caller
from kassa.core.http.pagination import list_object
from kassa.core.http.params import merge_metadata
from kassa.core.ids import new_id, random_token
from kassa.core.money import currency as parse_currency
from kassa.customers import service as customers
from kassa.payments import repository
from kassa.payments.schemas import (
    IntentCancel,
    IntentCapture,
    IntentConfirm,
    IntentCreate,
    IntentList,
    IntentUpdate,
    intent_object,
)
from kassa.payments.service import (
    async_methods,
    attempts,
    bank_debits,
    operations,
    transitions,
)
from kassa.payments.service.context import Origin, Payments, emit
from kassa.payments.service.transitions import IDLE, move
from kassa.payments.states import CANCELABLE, IntentStatus, UnexpectedState
from kassa.vault import service as vault

S = IntentStatus
OBJECT = "payment_intent"
_UPDATABLE = frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION})


def origin_of(caller: Caller) -> Origin:
    return Origin(
        caller.merchant_id,
        caller.livemode,
        "api",
        caller.request_id,
        caller.idempotency.key if caller.idempotency else None,
    )


def _check_amount(amount: int, currency: str) -> str:
    cur = parse_currency(currency)
    if amount < cur.minimum_charge:
        raise InvalidRequest(
            f"Amount must be at least {cur.minimum_charge} in {cur.code} minor units.",
            code="amount_too_small",
            param="amount",
        )
    return cur.code


async def _check_customer(p: Payments, caller: Caller, customer_id: str | None) -> None:
    if customer_id is None:
        return
    found = await customers.customer_for_expansion(
        p.db, caller.merchant_id, caller.livemode, customer_id
    )
    if found is None or found.get("deleted"):
        raise ResourceMissing("customer", customer_id, param="customer")


async def _resolve_pm(p: Payments, caller: Caller, pm: str | None) -> str | None:
    if pm is None:
        return None
    return await vault.resolve_payment_method(p.db, caller.merchant_id, caller.livemode, pm)


async def _locked_intent(conn: Connection, caller: Caller, intent_id: str) -> Record:
    row = await repository.get(
        conn, "payment_intents", caller.merchant_id, caller.livemode, intent_id, for_update=True
    )
    if row is None:
        raise ResourceMissing("payment_intent", intent_id, param="intent")
    return row


async def _respond(
    p: Payments, caller: Caller, obj: dict[str, Any], paths: list[str]
) -> dict[str, Any]:
    return await expansion.expand(p.db, obj, paths, caller.merchant_id, caller.livemode)


async def create_intent(p: Payments, caller: Caller, params: IntentCreate) -> dict[str, Any]:
    """Create an intent to collect ``amount``; with ``confirm=true`` also attempt it (see
    ``confirm_intent``). Creating moves no money."""
    expansion.validate(OBJECT, params.expand)
    currency = _check_amount(params.amount, params.currency)
    bank_debits.check_types(params.payment_method_types, currency)
    await _check_customer(p, caller, params.customer)
    pm_id = await _resolve_pm(p, caller, params.payment_method)
    origin = origin_of(caller)
    pm = await attempts.payment_method_for(p, origin, pm_id) if params.confirm else None
    intent_id = new_id("pi")
    status = S.REQUIRES_CONFIRMATION if pm_id else S.REQUIRES_PAYMENT_METHOD
    async with p.db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        intent = await repository.insert_intent(
            conn,
            {
                "merchant_id": caller.merchant_id,
                "id": intent_id,
                "livemode": caller.livemode,
                "created_at": clock.now(),
                "amount": params.amount,
                "currency": currency,
                "status": status.value,
                "capture_method": params.capture_method,
                "confirmation_method": params.confirmation_method,
                "customer_id": params.customer,
                "payment_method_id": pm_id,
                "description": params.description,
                "receipt_email": params.receipt_email,
                "statement_descriptor": params.statement_descriptor,
                "return_url": params.return_url,
                "metadata": merge_metadata(
                    {}, params.metadata, "metadata" in params.model_fields_set
                ),
                "client_secret": f"{intent_id}_secret_{random_token(18)}",
                "payment_method_types": params.payment_method_types,
            },
            "api",
            caller.request_id,
            clock.now(),
        )
        await emit(conn, origin, "payment_intent.created", intent_object(intent))
        if not params.confirm:
            obj = intent_object(intent)
            await idempotency.store_response(conn, caller.idempotency, 200, obj)
        elif pm is not None and async_methods.is_async(pm):
            intent, charge = await async_methods.begin(
                p, conn, origin, intent, pm, return_url=params.return_url
            )
        else:
            intent, charge = await attempts.begin(
                p, conn, origin, intent, pm, return_url=params.return_url
            )
    if not params.confirm:
        return await _respond(p, caller, obj, params.expand)
    if async_methods.is_async(pm):
        return await async_methods.finish(p, caller, origin, intent, charge, params.expand)
    return await _finish_attempt(p, caller, origin, intent, charge, params.expand)


async def _finish_attempt(
    p: Payments,
    caller: Caller,
    origin: Origin,
    intent: Record,
    charge: Record,
    expand: list[str],
) -> dict[str, Any]:
    charge, verdict = await attempts.attempt(p, origin, intent, charge)
    obj, error = await attempts.settle(p, origin, charge["id"], verdict, caller.idempotency)
    if error is not None:
        raise error
    return await _respond(p, caller, obj, expand)


async def confirm_intent(
    p: Payments, caller: Caller, intent_id: str, params: IntentConfirm
) -> dict[str, Any]:
    """Attempt the payment at a PSP: authorise, and for automatic capture also capture. On
    capture the amount is booked to the merchant's pending balance, less the fee."""
    expansion.validate(OBJECT, params.expand)
    pm_id = await _resolve_pm(p, caller, params.payment_method)
    origin = origin_of(caller)
    if pm_id is None:
        async with p.db.connection() as conn:
            current = await repository.get(
                conn, "payment_intents", caller.merchant_id, caller.livemode, intent_id
            )
        pm_id = current["payment_method_id"] if current is not None else None
    pm = await attempts.payment_method_for(p, origin, pm_id)
    async with p.db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        intent = await _locked_intent(conn, caller, intent_id)
        if params.payment_method is None and intent["payment_method_id"] != pm_id:
            # Updated between the read and the lock: the client retries against the new one.
            raise UnexpectedState(intent_id, intent["status"], "confirm")
        if params.capture_method and params.capture_method != intent["capture_method"]:
            intent = await repository.update(
                conn,
                "payment_intents",
                caller.merchant_id,
                intent_id,
                {"capture_method": params.capture_method},
            )
        if pm is not None and async_methods.is_async(pm):
            # Bank debits, wallets, BNPL: their own saga (service/async_methods.py).
            intent, charge = await async_methods.begin(
                p, conn, origin, intent, pm, return_url=params.return_url
            )
        else:
            intent, charge = await attempts.begin(
                p, conn, origin, intent, pm, return_url=params.return_url
            )
    if async_methods.is_async(pm):
        return await async_methods.finish(p, caller, origin, intent, charge, params.expand)
    return await _finish_attempt(p, caller, origin, intent, charge, params.expand)


async def retrieve_intent(
    p: Payments, caller: Caller, intent_id: str, expand: list[str]
) -> dict[str, Any]:
    expansion.validate(OBJECT, expand)
    async with p.db.connection() as conn:
        row = await repository.get(
            conn, "payment_intents", caller.merchant_id, caller.livemode, intent_id
        )
    if row is None:
        raise ResourceMissing("payment_intent", intent_id, param="intent")
    return await _respond(p, caller, intent_object(row), expand)


async def update_intent(
    p: Payments, caller: Caller, intent_id: str, params: IntentUpdate
) -> dict[str, Any]:
    """Change an unconfirmed intent (amount, currency, payment method, …)."""
    expansion.validate(OBJECT, params.expand)
    fields = params.model_fields_set
    await _check_customer(p, caller, params.customer if "customer" in fields else None)
    pm_id = await _resolve_pm(p, caller, params.payment_method)
    async with p.db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        intent = await _locked_intent(conn, caller, intent_id)
        if S(intent["status"]) not in _UPDATABLE:
            raise UnexpectedState(intent_id, intent["status"], "update")
        changes: dict[str, Any] = {}
        amount = params.amount if params.amount is not None else intent["amount"]
        currency = params.currency or intent["currency"]
        if {"amount", "currency"} & fields:
            changes["currency"] = _check_amount(amount, currency)
            changes["amount"] = amount
        for name in ("description", "receipt_email", "statement_descriptor", "capture_method"):
            if name in fields:
                changes[name] = getattr(params, name)
        if "customer" in fields:
            changes["customer_id"] = params.customer
        if "metadata" in fields:
            changes["metadata"] = merge_metadata(intent["metadata"], params.metadata, True)
        if "payment_method" in fields:
            changes["payment_method_id"] = pm_id
        previous = intent_object(intent)
        if "payment_method" in fields and S(intent["status"]) is not S.REQUIRES_ACTION:
            new = S.REQUIRES_CONFIRMATION if pm_id else S.REQUIRES_PAYMENT_METHOD
            if new.value != intent["status"]:
                intent = await move(conn, intent, new, origin_of(caller), "update", changes)
                changes = {}
        if changes:
            intent = await repository.update(
                conn, "payment_intents", caller.merchant_id, intent_id, changes
            )
        obj = intent_object(intent)
        await emit(
            conn,
            origin_of(caller),
            "payment_intent.updated",
            obj,
            {k: previous[k] for k in obj if obj[k] != previous[k]},
        )
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return await _respond(p, caller, obj, params.expand)


async def list_intents(p: Payments, caller: Caller, params: IntentList) -> dict[str, Any]:
    expansion.validate(OBJECT, params.expand, is_list=True)
    async with p.db.connection() as conn:
        rows = await repository.list_page(
            conn,
            "payment_intents",
            caller.merchant_id,
            caller.livemode,
            params,
            {"customer_id": params.customer},
            params.created,
        )
    page, has_more = params.page(rows)
    result = list_object("/v1/payment_intents", page, has_more, intent_object)
    return await _respond(p, caller, result, params.expand)


async def _begin_operation(
    p: Payments,
    caller: Caller,
    intent_id: str,
    operation: str,
    allowed: frozenset[IntentStatus],
    request: dict[str, Any],
) -> tuple[Record, Record | None]:
    """First transaction of a capture or void: mark the intent busy so no other operation
    starts, commit, and only then call the PSP. ``request``: what the request asks for beyond
    the operation (``metadata``, ``cancellation_reason``), which the sweep applies if this
    process dies before the outcome is committed."""
    async with p.db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        intent = await _locked_intent(conn, caller, intent_id)
        if S(intent["status"]) not in allowed or intent["operation"] is not None:
            raise UnexpectedState(intent_id, intent["status"], operation)
        charge = None
        if intent["latest_charge"]:
            charge = await repository.get(
                conn, "charges", caller.merchant_id, caller.livemode, intent["latest_charge"]
            )
        if S(intent["status"]) is S.REQUIRES_CAPTURE:
            intent = await repository.update(
                conn,
                "payment_intents",
                caller.merchant_id,
                intent_id,
                {
                    "operation": operation,
                    "operation_started_at": clock.now(),
                    # For the sweep that finishes the operation if this process dies.
                    "operation_request": {
                        **request,
                        "idempotency_key": caller.idempotency.key if caller.idempotency else None,
                    },
                },
            )
    return intent, charge


async def _release(p: Payments, caller: Caller, intent_id: str) -> None:
    async with p.db.transaction() as conn:
        await repository.update(
            conn,
            "payment_intents",
            caller.merchant_id,
            intent_id,
            {**IDLE},
        )
        await idempotency.release(conn, caller.idempotency)


async def capture_intent(
    p: Payments, caller: Caller, intent_id: str, params: IntentCapture
) -> dict[str, Any]:
    """Capture an authorised intent, in full or in part (the rest is released): books the
    captured amount to the merchant's pending balance, less the fee."""
    expansion.validate(OBJECT, params.expand)
    async with p.db.connection() as conn:
        row = await repository.get(
            conn, "payment_intents", caller.merchant_id, caller.livemode, intent_id
        )
    if (
        row is not None
        and params.amount_to_capture
        and (
            params.amount_to_capture > row["amount_capturable"]
            and row["status"] == S.REQUIRES_CAPTURE
        )
    ):
        raise InvalidRequest(
            f"The amount to capture ({params.amount_to_capture}) is greater than the amount "
            f"capturable ({row['amount_capturable']}).",
            code="amount_too_large",
            param="amount_to_capture",
        )
    intent, charge = await _begin_operation(
        p,
        caller,
        intent_id,
        "capture",
        frozenset({S.REQUIRES_CAPTURE}),
        {"metadata": params.metadata} if "metadata" in params.model_fields_set else {},
    )
    assert charge is not None
    amount = params.amount_to_capture or intent["amount_capturable"]
    connector = p.connectors.get(charge["connector"])
    if amount < charge["amount"] and not connector.partial_capture:
        await _release(p, caller, intent_id)
        raise InvalidRequest(
            f"The amount to capture ({amount}) must be the full amount ({charge['amount']}): "
            f"{(charge['payment_method_details'] or {}).get('type', 'these')} payments cannot "
            "be partially captured.",
            param="amount_to_capture",
        )
    try:
        result = await connector.capture(
            ModificationRequest(
                reference=f"{charge['id']}-capture",
                psp_reference=charge["psp_reference"],
                amount=amount,
                currency=charge["currency"],
            )
        )
    except ConnectorError as exc:
        await _release(p, caller, intent_id)
        raise ApiError(
            "The payment processor did not confirm the capture; it is safe to retry.",
            code="processor_unavailable",
        ) from exc
    if result.outcome is ModificationOutcome.FAILED:
        await _release(p, caller, intent_id)
        raise InvalidRequest(
            result.message or "The capture was refused by the processor.",
            code="charge_not_capturable",
        )
    try:
        settles_after = await operations.deferred_payout(p, charge)
    except ConnectorError as exc:
        # Captured at the provider, but when it pays out is unknown: a retry captures
        # again under the same reference (the provider answers the first) and asks again.
        await _release(p, caller, intent_id)
        raise ApiError(
            "The payment provider did not confirm the capture; it is safe to retry.",
            code="processor_unavailable",
        ) from exc
    origin = origin_of(caller)
    now = clock.now()
    async with p.db.transaction() as conn:
        intent = await _locked_intent(conn, caller, intent_id)
        charge = await repository.get(
            conn, "charges", caller.merchant_id, caller.livemode, charge["id"], for_update=True
        )
        assert charge is not None
        changes: dict[str, Any] = {}
        if "metadata" in params.model_fields_set:
            changes["metadata"] = merge_metadata(intent["metadata"], params.metadata, True)
        intent, charge = await operations.book_capture(
            conn,
            origin,
            intent,
            charge,
            amount,
            now=now,
            settles_after=settles_after,
            remainder_released=result.remainder_released,
            intent_changes=changes,
        )
        obj = intent_object(intent)
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return await _respond(p, caller, obj, params.expand)


async def cancel_intent(
    p: Payments, caller: Caller, intent_id: str, params: IntentCancel
) -> dict[str, Any]:
    """Cancel an intent; an authorisation is voided at the PSP first (no money was booked)."""
    expansion.validate(OBJECT, params.expand)
    intent, charge = await _begin_operation(
        p,
        caller,
        intent_id,
        "cancel",
        CANCELABLE,
        {"cancellation_reason": params.cancellation_reason},
    )
    if S(intent["status"]) is S.REQUIRES_CAPTURE and charge is not None:
        try:
            result = await p.connectors.get(charge["connector"]).void(
                ModificationRequest(
                    reference=f"{charge['id']}-void",
                    psp_reference=charge["psp_reference"],
                    amount=charge["amount"],
                    currency=charge["currency"],
                )
            )
        except ConnectorError as exc:
            await _release(p, caller, intent_id)
            raise ApiError(
                "The payment processor did not confirm the cancellation; it is safe to retry.",
                code="processor_unavailable",
            ) from exc
        if result.outcome is ModificationOutcome.FAILED:
            await _release(p, caller, intent_id)
            raise InvalidRequest(
                result.message or "The processor refused to void.",
                code="payment_intent_unexpected_state",
            )
    origin = origin_of(caller)
    async with p.db.transaction() as conn:
        intent = await _locked_intent(conn, caller, intent_id)
        intent = await transitions.cancel(
            conn, origin, intent, params.cancellation_reason, now=clock.now()
        )
        obj = intent_object(intent)
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return await _respond(p, caller, obj, params.expand)
