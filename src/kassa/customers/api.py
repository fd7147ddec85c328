"""``/v1/customers`` routes: parse, call the service, return the object."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.core.http.context import Caller
from kassa.core.http.params import parse
from kassa.core.http.routing import StripeRouter
from kassa.customers import service
from kassa.customers.schemas import CustomerCreate, CustomerList, CustomerRetrieve, CustomerUpdate

router = StripeRouter("/v1/customers", resource="customers", tag="customers")


@router.post("", body=CustomerCreate)
async def create(request: Request, c: Caller) -> dict[str, Any]:
    """Create a customer."""
    return await service.create_customer(request.app.state.db, c, parse(CustomerCreate, c.params))


@router.get("", query=CustomerList)
async def list_(request: Request, c: Caller) -> dict[str, Any]:
    """List customers, newest first."""
    return await service.list_customers(request.app.state.db, c, parse(CustomerList, c.params))


@router.get("/{customer_id}", query=CustomerRetrieve)
async def retrieve(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a customer."""
    params = parse(CustomerRetrieve, c.params)
    customer_id = request.path_params["customer_id"]
    return await service.retrieve_customer(request.app.state.db, c, customer_id, params.expand)


@router.post("/{customer_id}", body=CustomerUpdate)
async def update(request: Request, c: Caller) -> dict[str, Any]:
    """Update a customer."""
    params = parse(CustomerUpdate, c.params)
    customer_id = request.path_params["customer_id"]
    return await service.update_customer(request.app.state.db, c, customer_id, params)


@router.delete("/{customer_id}")
async def delete(request: Request, c: Caller) -> dict[str, Any]:
    """Delete a customer."""
    customer_id = request.path_params["customer_id"]
    return await service.delete_customer(request.app.state.db, c, customer_id)
