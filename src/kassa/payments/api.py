"""Routes: ``/v1/payment_intents``, ``/v1/charges``, ``/v1/refunds``, ``/v1/balance`` and
``/v1/balance_transactions``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.core.http.context import Caller
from kassa.core.http.params import parse
from kassa.core.http.routing import StripeRouter
from kassa.payments import expansions as _expansions  # noqa: F401 - registers expand[] paths
from kassa.payments.schemas import (
    BalanceRetrieve,
    BalanceTransactionList,
    ChargeList,
    IntentCancel,
    IntentCapture,
    IntentConfirm,
    IntentCreate,
    IntentList,
    IntentUpdate,
    RefundCreate,
    RefundList,
    Retrieve,
)
from kassa.payments.service import intents, reads, refunds
from kassa.payments.service.context import Payments

intents_router = StripeRouter(
    "/v1/payment_intents", resource="payment_intents", tag="payment_intents"
)
charges_router = StripeRouter("/v1/charges", resource="charges", tag="charges")
refunds_router = StripeRouter("/v1/refunds", resource="refunds", tag="refunds")
balance_router = StripeRouter("/v1", resource="balance", tag="balance")


def _p(request: Request) -> Payments:
    payments: Payments = request.app.state.payments
    return payments


@intents_router.post("", body=IntentCreate)
async def create_intent(request: Request, c: Caller) -> dict[str, Any]:
    """Create a PaymentIntent."""
    return await intents.create_intent(_p(request), c, parse(IntentCreate, c.params))


@intents_router.get("", query=IntentList)
async def list_intents(request: Request, c: Caller) -> dict[str, Any]:
    """List PaymentIntents."""
    return await intents.list_intents(_p(request), c, parse(IntentList, c.params))


@intents_router.get("/{intent}", query=Retrieve)
async def retrieve_intent(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a PaymentIntent."""
    params = parse(Retrieve, c.params)
    return await intents.retrieve_intent(
        _p(request), c, request.path_params["intent"], params.expand
    )


@intents_router.post("/{intent}", body=IntentUpdate)
async def update_intent(request: Request, c: Caller) -> dict[str, Any]:
    """Update a PaymentIntent."""
    return await intents.update_intent(
        _p(request), c, request.path_params["intent"], parse(IntentUpdate, c.params)
    )


@intents_router.post("/{intent}/confirm", body=IntentConfirm)
async def confirm_intent(request: Request, c: Caller) -> dict[str, Any]:
    """Confirm a PaymentIntent: attempt the payment."""
    return await intents.confirm_intent(
        _p(request), c, request.path_params["intent"], parse(IntentConfirm, c.params)
    )


@intents_router.post("/{intent}/capture", body=IntentCapture)
async def capture_intent(request: Request, c: Caller) -> dict[str, Any]:
    """Capture an authorised PaymentIntent."""
    return await intents.capture_intent(
        _p(request), c, request.path_params["intent"], parse(IntentCapture, c.params)
    )


@intents_router.post("/{intent}/cancel", body=IntentCancel)
async def cancel_intent(request: Request, c: Caller) -> dict[str, Any]:
    """Cancel a PaymentIntent."""
    return await intents.cancel_intent(
        _p(request), c, request.path_params["intent"], parse(IntentCancel, c.params)
    )


@charges_router.get("", query=ChargeList)
async def list_charges(request: Request, c: Caller) -> dict[str, Any]:
    """List charges."""
    return await reads.list_charges(_p(request), c, parse(ChargeList, c.params))


@charges_router.get("/{charge}", query=Retrieve)
async def retrieve_charge(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a charge."""
    params = parse(Retrieve, c.params)
    return await reads.retrieve_charge(_p(request), c, request.path_params["charge"], params.expand)


@refunds_router.post("", body=RefundCreate)
async def create_refund(request: Request, c: Caller) -> dict[str, Any]:
    """Refund a charge, in full or in part."""
    return await refunds.create_refund(_p(request), c, parse(RefundCreate, c.params))


@refunds_router.get("", query=RefundList)
async def list_refunds(request: Request, c: Caller) -> dict[str, Any]:
    """List refunds."""
    return await refunds.list_refunds(_p(request), c, parse(RefundList, c.params))


@refunds_router.get("/{refund}", query=Retrieve)
async def retrieve_refund(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a refund."""
    params = parse(Retrieve, c.params)
    return await refunds.retrieve_refund(
        _p(request), c, request.path_params["refund"], params.expand
    )


@balance_router.get("/balance", query=BalanceRetrieve)
async def retrieve_balance(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve the balance."""
    parse(BalanceRetrieve, c.params)
    return await reads.balance(_p(request), c)


@balance_router.get("/balance_transactions", query=BalanceTransactionList)
async def list_balance_transactions(request: Request, c: Caller) -> dict[str, Any]:
    """List balance transactions."""
    return await reads.list_balance_transactions(
        _p(request), c, parse(BalanceTransactionList, c.params)
    )


@balance_router.get("/balance_transactions/{txn}", query=Retrieve)
async def retrieve_balance_transaction(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a balance transaction."""
    params = parse(Retrieve, c.params)
    return await reads.retrieve_balance_transaction(
        _p(request), c, request.path_params["txn"], params.expand
    )
