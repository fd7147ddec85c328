"""Customer parameters and the Stripe ``customer`` object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kassa.core.http.pagination import Created, ListParams
from kassa.core.http.params import Expand, Metadata, OptionalStr, Params


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=200)
    line1: OptionalStr = None
    line2: OptionalStr = None
    city: OptionalStr = None
    state: OptionalStr = None
    postal_code: OptionalStr = None
    country: OptionalStr = None


class Shipping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=200)
    name: str = Field(min_length=1)
    phone: OptionalStr = None
    address: Address


class CustomerFields(Params):
    name: OptionalStr = Field(default=None, max_length=256)
    email: OptionalStr = Field(default=None, max_length=512)
    phone: OptionalStr = Field(default=None, max_length=20)
    description: OptionalStr = Field(default=None, max_length=350)
    address: Address | None = None
    shipping: Shipping | None = None
    metadata: Metadata = None
    expand: Expand


class InvoiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default_payment_method: OptionalStr = Field(default=None, max_length=255)


class CustomerCreate(CustomerFields):
    pass


class CustomerUpdate(CustomerFields):
    invoice_settings: InvoiceSettings | None = None


class CustomerRetrieve(Params):
    expand: Expand


class CustomerList(ListParams):
    email: str | None = Field(default=None, max_length=512)
    created: Created = None


PII_FIELDS = ("name", "email", "phone", "address", "shipping")


def customer_object(row: Any, pii: dict[str, Any]) -> dict[str, Any]:
    """The ``customer`` object as Stripe's API returns it."""
    return {
        "id": row["id"],
        "object": "customer",
        "address": pii.get("address"),
        "balance": 0,
        "created": int(row["created_at"].timestamp()),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": row["description"],
        "discount": None,
        "email": pii.get("email"),
        "invoice_prefix": row["id"][-8:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": row["default_payment_method"],
            "footer": None,
            "rendering_options": None,
        },
        "livemode": row["livemode"],
        "metadata": row["metadata"],
        "name": pii.get("name"),
        "phone": pii.get("phone"),
        "preferred_locales": [],
        "shipping": pii.get("shipping"),
        "tax_exempt": "none",
        "test_clock": None,
    }


def deleted_object(customer_id: str) -> dict[str, Any]:
    return {"id": customer_id, "object": "customer", "deleted": True}
