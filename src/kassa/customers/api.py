"""``/v1/customers`` routes: parse, call the service, return the object."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from kassa.core.http import openapi
from kassa.core.http.context import Caller, caller
from kassa.core.http.params import parse
from kassa.core.http.responses import JSON
from kassa.customers import service
from kassa.customers.schemas import CustomerCreate, CustomerList, CustomerRetrieve, CustomerUpdate

router = APIRouter(prefix="/v1/customers", tags=["customers"])
_auth = caller("customers")


@router.post("", openapi_extra=openapi.body(CustomerCreate))
async def create(request: Request, c: Caller = Depends(_auth)) -> JSON:
    return JSON(
        await service.create_customer(request.app.state.db, c, parse(CustomerCreate, c.params))
    )


@router.get("", openapi_extra=openapi.query(CustomerList))
async def list_(request: Request, c: Caller = Depends(_auth)) -> JSON:
    return JSON(
        await service.list_customers(request.app.state.db, c, parse(CustomerList, c.params))
    )


@router.get("/{customer_id}", openapi_extra=openapi.query(CustomerRetrieve))
async def retrieve(customer_id: str, request: Request, c: Caller = Depends(_auth)) -> JSON:
    params = parse(CustomerRetrieve, c.params)
    return JSON(
        await service.retrieve_customer(request.app.state.db, c, customer_id, params.expand)
    )


@router.post("/{customer_id}", openapi_extra=openapi.body(CustomerUpdate))
async def update(customer_id: str, request: Request, c: Caller = Depends(_auth)) -> JSON:
    params = parse(CustomerUpdate, c.params)
    return JSON(await service.update_customer(request.app.state.db, c, customer_id, params))


@router.delete("/{customer_id}", openapi_extra=openapi.errors_only())
async def delete(customer_id: str, request: Request, c: Caller = Depends(_auth)) -> JSON:
    return JSON(await service.delete_customer(request.app.state.db, c, customer_id))
