"""Customers: create, read, update, delete and list. Name, email, phone and addresses are
sealed with a per-customer data key (``core.crypto``); email lookups use a blind index."""

from __future__ import annotations

from typing import Any

import orjson

from kassa.core import clock
from kassa.core.db import Connection, Database, Record
from kassa.core.errors import ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http import idempotency
from kassa.core.http.context import Caller
from kassa.core.http.pagination import list_object
from kassa.core.http.params import merge_metadata
from kassa.core.ids import new_id
from kassa.core.keyring import keyring
from kassa.customers import repository
from kassa.customers.schemas import (
    PII_FIELDS,
    CustomerCreate,
    CustomerList,
    CustomerUpdate,
    customer_object,
    deleted_object,
)


def _seal(customer_id: str, pii: dict[str, Any]) -> tuple[bytes, bytes, bytes | None]:
    ring = keyring()
    wrapped, sealed = ring.seal_record(customer_id, orjson.dumps(pii))
    email = pii.get("email")
    return wrapped, sealed, ring.blind_index(email) if email else None


def _open(row: Record) -> dict[str, Any]:
    if row["pii"] is None or row["pii_key"] is None:
        return {}
    plain = keyring().open_record(row["id"], bytes(row["pii_key"]), bytes(row["pii"]))
    data: dict[str, Any] = orjson.loads(plain)
    return data


def _render(row: Record) -> dict[str, Any]:
    if row["deleted_at"] is not None:
        return deleted_object(row["id"])
    return customer_object(row, _open(row))


def _pii(params: CustomerCreate | CustomerUpdate, current: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for name in PII_FIELDS:
        if name in params.model_fields_set:
            value = getattr(params, name)
            merged[name] = value.model_dump() if hasattr(value, "model_dump") else value
    return merged


async def create_customer(db: Database, caller: Caller, params: CustomerCreate) -> dict[str, Any]:
    """Create a customer (no money moves)."""
    expansion.validate("customer", params.expand)
    customer_id = new_id("cus")
    pii = _pii(params, {})
    wrapped, sealed, email_index = _seal(customer_id, pii)
    async with db.transaction(single_statement=caller.idempotency is None) as conn:
        await idempotency.claim(conn, caller.idempotency)
        row = await repository.insert(
            conn,
            merchant_id=caller.merchant_id,
            id=customer_id,
            livemode=caller.livemode,
            created_at=clock.now(),
            description=params.description,
            metadata=merge_metadata({}, params.metadata, "metadata" in params.model_fields_set),
            pii=sealed,
            pii_key=wrapped,
            email_index=email_index,
        )
        obj = customer_object(row, pii)
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return await expansion.expand(db, obj, params.expand, caller.merchant_id, caller.livemode)


async def retrieve_customer(
    db: Database, caller: Caller, customer_id: str, expand: list[str]
) -> dict[str, Any]:
    expansion.validate("customer", expand)
    async with db.connection() as conn:
        row = await repository.get(conn, caller.merchant_id, caller.livemode, customer_id)
    if row is None:
        raise ResourceMissing("customer", customer_id)
    return await expansion.expand(db, _render(row), expand, caller.merchant_id, caller.livemode)


async def update_customer(
    db: Database, caller: Caller, customer_id: str, params: CustomerUpdate
) -> dict[str, Any]:
    """Update the given fields; ``metadata[k]=`` removes a key, an empty string unsets."""
    expansion.validate("customer", params.expand)
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        row = await repository.get(
            conn, caller.merchant_id, caller.livemode, customer_id, for_update=True
        )
        if row is None or row["deleted_at"] is not None:
            raise ResourceMissing("customer", customer_id)
        pii = _pii(params, _open(row))
        wrapped, sealed, email_index = _seal(customer_id, pii)
        description = (
            params.description if "description" in params.model_fields_set else row["description"]
        )
        metadata = merge_metadata(
            row["metadata"], params.metadata, "metadata" in params.model_fields_set
        )
        default_pm = row["default_payment_method"]
        settings = params.invoice_settings
        if settings is not None and "default_payment_method" in settings.model_fields_set:
            default_pm = settings.default_payment_method
            if default_pm is not None:
                # Imported here: the vault imports this module (a card belongs to a customer).
                from kassa.vault import service as vault

                await vault.ensure_attached(
                    conn,
                    caller.merchant_id,
                    caller.livemode,
                    default_pm,
                    customer_id,
                    param="invoice_settings[default_payment_method]",
                )
        row = await repository.update(
            conn,
            caller.merchant_id,
            customer_id,
            description=description,
            metadata=metadata,
            pii=sealed,
            pii_key=wrapped,
            email_index=email_index,
            default_payment_method=default_pm,
        )
        obj = customer_object(row, pii)
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return await expansion.expand(db, obj, params.expand, caller.merchant_id, caller.livemode)


async def forget_default_payment_method(
    conn: Connection, merchant_id: str, customer_id: str, payment_method_id: str
) -> None:
    """Unset the customer's default payment method if it is ``payment_method_id`` (the vault is
    detaching it). Runs in the caller's transaction, so the detach and this commit together.

    Always locks the customer row: the vault calls this before it locks the payment method,
    the order ``update_customer`` takes them in, so a detach racing "make it the default" is
    serialised (no dangling default, no deadlock)."""
    await repository.clear_default_payment_method(conn, merchant_id, customer_id, payment_method_id)


async def delete_customer(db: Database, caller: Caller, customer_id: str) -> dict[str, Any]:
    """Delete a customer: its personal data is crypto-shredded, its id stays referable."""
    async with db.transaction() as conn:
        row = await repository.get(
            conn, caller.merchant_id, caller.livemode, customer_id, for_update=True
        )
        if row is None or row["deleted_at"] is not None:
            raise ResourceMissing("customer", customer_id)
        await repository.mark_deleted(conn, caller.merchant_id, customer_id, clock.now())
    return deleted_object(customer_id)


async def list_customers(db: Database, caller: Caller, params: CustomerList) -> dict[str, Any]:
    expansion.validate("customer", params.expand, is_list=True)
    email_index = keyring().blind_index(params.email) if params.email else None
    async with db.connection() as conn:
        rows = await repository.list_page(
            conn,
            caller.merchant_id,
            caller.livemode,
            params,
            email_index=email_index,
            created=params.created,
        )
    page, has_more = params.page(rows)
    result = list_object("/v1/customers", page, has_more, _render)
    return await expansion.expand(db, result, params.expand, caller.merchant_id, caller.livemode)


async def customer_for_expansion(
    db: Database, merchant_id: str, livemode: bool, customer_id: str
) -> dict[str, Any] | None:
    """The customer object, for other objects' ``expand[]=customer``."""
    async with db.connection() as conn:
        row = await repository.get(conn, merchant_id, livemode, customer_id)
    return _render(row) if row else None
