"""``/v1/payment_methods`` and ``/v1/customers/{customer}/payment_methods`` routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.core.http.context import Caller
from kassa.core.http.params import parse
from kassa.core.http.routing import StripeRouter
from kassa.vault import service
from kassa.vault.schemas import (
    CustomerPaymentMethodList,
    PaymentMethodAttach,
    PaymentMethodCreate,
    PaymentMethodDetach,
    PaymentMethodList,
    PaymentMethodRetrieve,
    PaymentMethodUpdate,
)

router = StripeRouter("/v1/payment_methods", resource="payment_methods", tag="payment_methods")
# A customer's payment methods are payment methods: restricted keys need payment_methods access.
customer_router = StripeRouter("/v1/customers", resource="payment_methods", tag="payment_methods")


@router.post("", body=PaymentMethodCreate, publishable=True)
async def create(request: Request, c: Caller) -> dict[str, Any]:
    """Create a card payment method (tokenize a card)."""
    params = parse(PaymentMethodCreate, c.params)
    return await service.create_payment_method(request.app.state.db, c, params)


@router.get("", query=PaymentMethodList)
async def list_(request: Request, c: Caller) -> dict[str, Any]:
    """List payment methods, newest first."""
    params = parse(PaymentMethodList, c.params)
    return await service.list_payment_methods(request.app.state.db, c, params)


@router.get("/{payment_method}", query=PaymentMethodRetrieve)
async def retrieve(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a payment method."""
    params = parse(PaymentMethodRetrieve, c.params)
    pm_id = request.path_params["payment_method"]
    return await service.retrieve_payment_method(request.app.state.db, c, pm_id, params.expand)


@router.post("/{payment_method}", body=PaymentMethodUpdate)
async def update(request: Request, c: Caller) -> dict[str, Any]:
    """Update a payment method attached to a customer."""
    params = parse(PaymentMethodUpdate, c.params)
    pm_id = request.path_params["payment_method"]
    return await service.update_payment_method(request.app.state.db, c, pm_id, params)


@router.post("/{payment_method}/attach", body=PaymentMethodAttach)
async def attach(request: Request, c: Caller) -> dict[str, Any]:
    """Attach a payment method to a customer."""
    params = parse(PaymentMethodAttach, c.params)
    pm_id = request.path_params["payment_method"]
    return await service.attach_payment_method(request.app.state.db, c, pm_id, params)


@router.post("/{payment_method}/detach", body=PaymentMethodDetach)
async def detach(request: Request, c: Caller) -> dict[str, Any]:
    """Detach a payment method from its customer."""
    params = parse(PaymentMethodDetach, c.params)
    pm_id = request.path_params["payment_method"]
    return await service.detach_payment_method(request.app.state.db, c, pm_id, params.expand)


@customer_router.get("/{customer}/payment_methods", query=CustomerPaymentMethodList)
async def list_for_customer(request: Request, c: Caller) -> dict[str, Any]:
    """List a customer's payment methods, newest first."""
    params = parse(CustomerPaymentMethodList, c.params)
    customer_id = request.path_params["customer"]
    return await service.list_customer_payment_methods(request.app.state.db, c, customer_id, params)


@customer_router.get("/{customer}/payment_methods/{payment_method}", query=PaymentMethodRetrieve)
async def retrieve_for_customer(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve one of a customer's payment methods."""
    params = parse(PaymentMethodRetrieve, c.params)
    return await service.retrieve_customer_payment_method(
        request.app.state.db,
        c,
        request.path_params["customer"],
        request.path_params["payment_method"],
        params.expand,
    )
