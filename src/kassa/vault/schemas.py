"""PaymentMethod parameters and the Stripe ``payment_method`` object."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from kassa.core.http.pagination import ListParams
from kassa.core.http.params import Expand, Metadata, OptionalStr, Params
from kassa.vault.cards import DISPLAY_BRAND


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


class _Nested(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=5000)


class BillingAddress(_Nested):
    line1: OptionalStr = Field(default=None, max_length=200)
    line2: OptionalStr = Field(default=None, max_length=200)
    city: OptionalStr = Field(default=None, max_length=200)
    state: OptionalStr = Field(default=None, max_length=200)
    postal_code: OptionalStr = Field(default=None, max_length=20)
    country: OptionalStr = Field(default=None, max_length=2)


class BillingDetails(_Nested):
    address: Annotated[BillingAddress | None, BeforeValidator(_blank_to_none)] = None
    email: OptionalStr = Field(default=None, max_length=512)
    name: OptionalStr = Field(default=None, max_length=256)
    phone: OptionalStr = Field(default=None, max_length=40)


OptionalBilling = Annotated[BillingDetails | None, BeforeValidator(_blank_to_none)]
AllowRedisplay = Literal["always", "limited", "unspecified"]


class CardNumberDetails(_Nested):
    # Plain strings, never ints: validation errors then never quote the number or the code.
    number: str
    exp_month: int
    exp_year: int
    cvc: OptionalStr = None


class UsBankAccountDetails(_Nested):
    # Plain strings: validation errors then never quote the number.
    account_number: str = Field(max_length=40)
    routing_number: str = Field(max_length=40)
    account_holder_type: Literal["individual", "company"] = "individual"
    account_type: Literal["checking", "savings"] = "checking"


class SepaDebitDetails(_Nested):
    iban: str = Field(max_length=64)


class DateOfBirth(_Nested):
    day: int = Field(ge=1, le=31)
    month: int = Field(ge=1, le=12)
    year: int = Field(ge=1900, le=2200)


class KlarnaDetails(_Nested):
    dob: DateOfBirth | None = None


class NoDetails(_Nested):
    pass


# Payment method types the vault holds: cards, bank accounts for direct debits, and the
# redirect methods of a wallet (``paypal``) and buy now, pay later (``klarna``).
METHOD_TYPES = ("card", "us_bank_account", "sepa_debit", "paypal", "klarna")
MethodType = Literal["card", "us_bank_account", "sepa_debit", "paypal", "klarna"]


class PaymentMethodCreate(Params):
    type: MethodType
    card: CardNumberDetails | None = None
    us_bank_account: UsBankAccountDetails | None = None
    sepa_debit: SepaDebitDetails | None = None
    paypal: NoDetails | None = None
    klarna: KlarnaDetails | None = None
    billing_details: OptionalBilling = None
    metadata: Metadata = None
    allow_redisplay: AllowRedisplay | None = None
    expand: Expand


class CardUpdate(_Nested):
    exp_month: int | None = None
    exp_year: int | None = None


class PaymentMethodUpdate(Params):
    billing_details: OptionalBilling = None
    card: CardUpdate | None = None
    metadata: Metadata = None
    allow_redisplay: AllowRedisplay | None = None
    expand: Expand


class PaymentMethodAttach(Params):
    customer: str = Field(min_length=1, max_length=255)
    expand: Expand


class PaymentMethodDetach(Params):
    expand: Expand


class PaymentMethodRetrieve(Params):
    expand: Expand


# Stripe's payment method types are lower_snake words; a type Kassa does not hold lists as
# empty rather than failing integrations that ask for it.
PaymentMethodType = Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,39}$")]


class PaymentMethodList(ListParams):
    customer: str | None = Field(default=None, max_length=255)
    type: PaymentMethodType | None = None


class CustomerPaymentMethodList(ListParams):
    type: PaymentMethodType | None = None
    allow_redisplay: AllowRedisplay | None = None


def empty_billing_details() -> dict[str, Any]:
    return {
        "address": {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "email": None,
        "name": None,
        "phone": None,
    }


def merge_billing_details(current: dict[str, Any], update: BillingDetails | None) -> dict[str, Any]:
    """Apply the fields given in ``update`` (an empty string unsets one; ``billing_details=``
    unsets all); the address merges field by field, as Stripe's update does."""
    if update is None:
        return empty_billing_details()
    merged = {**empty_billing_details(), **current}
    for name in update.model_fields_set:
        value = getattr(update, name)
        if name == "address":
            address = dict(merged["address"])
            if value is None:
                address = empty_billing_details()["address"]
            else:
                for field in value.model_fields_set:
                    address[field] = getattr(value, field)
            merged["address"] = address
        else:
            merged[name] = value
    return merged


def is_empty(billing: dict[str, Any]) -> bool:
    return {**empty_billing_details(), **billing} == empty_billing_details()


def _check(stored: str | None, present: bool) -> str | None:
    # Until an authorisation verifies a field, Stripe reports a supplied field as "unchecked".
    return stored if stored is not None else ("unchecked" if present else None)


def payment_method_object(row: Any, billing: dict[str, Any]) -> dict[str, Any]:
    """The ``payment_method`` object as Stripe's API returns it."""
    billing = {**empty_billing_details(), **billing}
    if row["type"] != "card":
        # Bank accounts and redirect methods: what ``details`` holds (never an account
        # number or IBAN), with the keyed fingerprint for bank accounts.
        details = dict(row["details"] or {})
        if row["fingerprint"] is not None:
            details["fingerprint"] = row["fingerprint"]
        return {
            "id": row["id"],
            "object": "payment_method",
            "allow_redisplay": row["allow_redisplay"],
            "billing_details": billing,
            "created": int(row["created_at"].timestamp()),
            "customer": row["customer_id"],
            "livemode": row["livemode"],
            "metadata": row["metadata"],
            "type": row["type"],
            row["type"]: details,
        }
    address = billing["address"]
    brand = row["brand"]
    return {
        "id": row["id"],
        "object": "payment_method",
        "allow_redisplay": row["allow_redisplay"],
        "billing_details": billing,
        "card": {
            "brand": brand,
            "checks": {
                "address_line1_check": _check(
                    row["address_line1_check"], bool(address.get("line1"))
                ),
                "address_postal_code_check": _check(
                    row["address_postal_code_check"], bool(address.get("postal_code"))
                ),
                "cvc_check": row["cvc_check"],
            },
            "country": row["country"],
            "display_brand": DISPLAY_BRAND.get(brand, "other"),
            "exp_month": row["exp_month"],
            "exp_year": row["exp_year"],
            "fingerprint": row["fingerprint"],
            "funding": row["funding"],
            "generated_from": None,
            "last4": row["last4"],
            "networks": {"available": [brand], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": int(row["created_at"].timestamp()),
        "customer": row["customer_id"],
        "livemode": row["livemode"],
        "metadata": row["metadata"],
        "type": "card",
    }
