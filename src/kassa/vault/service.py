"""The vault: card numbers in, ``pm_…`` tokens out. The only code in Kassa that sees a PAN.

A card number is validated, fingerprinted with a keyed hash, and sealed with AES-256-GCM under
a data key of its own (wrapped by the KEK, bound to the payment method's id). The CVC never
touches storage: it waits in this process's memory (``vault.cvc``) for the first
authorisation. The one way a number leaves the vault is ``card_for_authorization``, decrypted
in memory for the one PSP call that needs it.

Functions taking a ``Caller`` back the HTTP routes; the others are what other domains call
(payments: ``resolve_payment_method``, ``get_payment_method``, ``card_for_authorization``,
``take_cvc``, ``record_checks``; customers: ``ensure_attached``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kassa.core import clock
from kassa.core.db import Connection, Database, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http import idempotency
from kassa.core.http.context import Caller
from kassa.core.http.pagination import list_object
from kassa.core.http.params import merge_metadata
from kassa.core.ids import new_id
from kassa.core.keyring import keyring
from kassa.customers import service as customers
from kassa.events import service as events
from kassa.vault import bank_accounts, cards, repository, sealing
from kassa.vault import cvc as cvc_store
from kassa.vault.errors import (
    PaymentMethodMissing,
    already_attached,
    must_be_attached_to_update,
    not_attached,
    not_reusable,
)
from kassa.vault.schemas import (
    METHOD_TYPES,
    CustomerPaymentMethodList,
    KlarnaDetails,
    PaymentMethodAttach,
    PaymentMethodCreate,
    PaymentMethodList,
    PaymentMethodUpdate,
    SepaDebitDetails,
    UsBankAccountDetails,
    merge_billing_details,
    payment_method_object,
)
from kassa.vault.tokens import TEST_TOKENS

OBJECT = "payment_method"


@dataclass(frozen=True, slots=True)
class _NewCard:
    """A validated card, sealed and ready to insert (the number only as ciphertext)."""

    pm_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    funding: str
    country: str | None
    pan: bytes
    pan_key: bytes
    kek_id: str
    cvc: str | None = field(repr=False)


def _tokenize(raw_number: str, exp_month: int, exp_year: int, cvc: str | None) -> _NewCard:
    """Validate card details (number, then expiry, then CVC: the first error wins) and seal
    the number."""
    number = cards.normalize_number(raw_number)
    exp_month, exp_year = cards.check_expiry(exp_month, exp_year, clock.now())
    info = cards.bin_info(number)
    # The IIN ranges decide the brand; the BIN file may only refine country and funding.
    brand, _ = cards.brand_of(number)
    if cvc is not None:
        cards.check_cvc(cvc, brand)
    pm_id = new_id("pm")
    pan_key, pan, kek_id = sealing.seal_pan(pm_id, number)
    return _NewCard(
        pm_id=pm_id,
        brand=brand,
        last4=number[-4:],
        exp_month=exp_month,
        exp_year=exp_year,
        fingerprint=sealing.fingerprint_of(number),
        funding=info.funding,
        country=info.country,
        pan=pan,
        pan_key=pan_key,
        kek_id=kek_id,
        cvc=cvc,
    )


async def _insert(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    card: _NewCard,
    *,
    billing: dict[str, Any],
    metadata: dict[str, str],
    allow_redisplay: str,
) -> Record:
    billing_key, sealed_billing = sealing.seal_billing(card.pm_id, billing)
    row: Record = await repository.insert(
        conn,
        merchant_id=merchant_id,
        id=card.pm_id,
        livemode=livemode,
        created_at=clock.now(),
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        fingerprint=card.fingerprint,
        funding=card.funding,
        country=card.country,
        pan=card.pan,
        pan_key=card.pan_key,
        billing_details=sealed_billing,
        billing_key=billing_key,
        kek_id=card.kek_id,
        cvc_check="unchecked" if card.cvc is not None else None,
        allow_redisplay=allow_redisplay,
        customer_id=None,
        metadata=metadata,
    )
    return row


def _remember_cvc(card: _NewCard) -> None:
    # Only after the row committed: a rolled-back tokenization leaves no code behind.
    if card.cvc is not None:
        cvc_store.store.put(card.pm_id, card.cvc)


def _test_card(token: str) -> _NewCard:
    """A fresh payment method's card for a test token, as Stripe makes one per use."""
    number = TEST_TOKENS[token]
    now = clock.now()
    brand, _ = cards.brand_of(number)
    # As if typed into a checkout form: a code of the right length, a date a year ahead.
    return _tokenize(number, now.month, now.year + 1, "1234" if brand == "amex" else "123")


async def _materialise(conn: Connection, merchant_id: str, token: str) -> tuple[Record, _NewCard]:
    card = _test_card(token)
    row = await _insert(
        conn, merchant_id, False, card, billing={}, metadata={}, allow_redisplay="unspecified"
    )
    return row, card


def _render(row: Record) -> dict[str, Any]:
    return payment_method_object(row, sealing.open_billing(row))


def _event_args(caller: Caller) -> dict[str, Any]:
    return {
        "merchant_id": caller.merchant_id,
        "livemode": caller.livemode,
        "request_id": caller.request_id,
        "idempotency_key": caller.idempotency.key if caller.idempotency else None,
    }


def _previous(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Stripe's ``previous_attributes``: the old values of what changed, one level deep."""
    out: dict[str, Any] = {}
    for key, value in old.items():
        if new.get(key) == value:
            continue
        if isinstance(value, dict) and isinstance(new.get(key), dict) and key != "metadata":
            out[key] = {k: v for k, v in value.items() if new[key].get(k) != v}
        else:
            out[key] = value
    return out


# --- the HTTP API ---------------------------------------------------------------------------


def _details_for(params: PaymentMethodCreate) -> Any:
    """The type's own hash (``card``, ``us_bank_account``…): required for cards and bank
    accounts, and no other type's hash may come with it."""
    for other in METHOD_TYPES:
        if other != params.type and getattr(params, other) is not None:
            raise InvalidRequest(
                f"Received unknown parameter: {other}. A payment method of type "
                f"{params.type} takes {params.type}, not {other}.",
                param=other,
            )
    details = getattr(params, params.type)
    if details is None and params.type in ("card", "us_bank_account", "sepa_debit"):
        raise InvalidRequest(
            f"Missing required param: {params.type}.", code="parameter_missing", param=params.type
        )
    return details


def _require_billing(billing: dict[str, Any], field: str, type_: str) -> None:
    if not billing.get(field):
        raise InvalidRequest(
            f"Missing required param: billing_details[{field}]. A {type_} payment method "
            f"needs the {'account holder' if field == 'name' else 'customer'}'s {field}.",
            code="parameter_missing",
            param=f"billing_details[{field}]",
        )


def _new_method(
    pm_id: str, params: PaymentMethodCreate, billing: dict[str, Any]
) -> tuple[dict[str, Any], str | None, str | None]:
    """(shown details, fingerprint, secret to seal) of a non-card payment method, validated."""
    details = _details_for(params)
    if isinstance(details, UsBankAccountDetails):
        _require_billing(billing, "name", params.type)
        routing, number = bank_accounts.check_us_account(
            details.routing_number, details.account_number
        )
        shown: dict[str, Any] = {
            "account_holder_type": details.account_holder_type,
            "account_type": details.account_type,
            "bank_name": None,
            "financial_connections_account": None,
            "last4": number[-4:],
            "networks": {"preferred": "ach", "supported": ["ach"]},
            "routing_number": routing,
            "status_details": None,
        }
        return shown, sealing.bank_fingerprint_of(f"{routing}/{number}"), number
    if isinstance(details, SepaDebitDetails):
        _require_billing(billing, "name", params.type)
        iban = bank_accounts.normalize_iban(details.iban)
        bank_code, branch_code = bank_accounts.iban_codes(iban)
        shown = {
            "bank_code": bank_code,
            "branch_code": branch_code,
            "country": iban[:2],
            "generated_from": {"charge": None, "setup_attempt": None},
            "last4": iban[-4:],
        }
        return shown, sealing.bank_fingerprint_of(iban), iban
    if params.type == "klarna":
        _require_billing(billing, "email", params.type)
        dob = (
            details.dob.model_dump() if isinstance(details, KlarnaDetails) and details.dob else None
        )
        return {"dob": dob}, None, None
    return {}, None, None  # paypal: the buyer is known once they approve a payment


async def _create_method(
    db: Database, caller: Caller, params: PaymentMethodCreate
) -> dict[str, Any]:
    """A bank account or redirect payment method. A bank account's number (or IBAN) is
    sealed like a card number; only its last four, routing number or bank code and keyed
    fingerprint are readable."""
    billing = merge_billing_details({}, params.billing_details) if params.billing_details else {}
    pm_id = new_id("pm")
    shown, fingerprint, secret = _new_method(pm_id, params, billing)
    sealed_key: bytes | None = None
    sealed: bytes | None = None
    kek_id = keyring().current.key_id
    if secret is not None:
        sealed_key, sealed, kek_id = sealing.seal_pan(pm_id, secret)
    billing_key, sealed_billing = sealing.seal_billing(pm_id, billing)
    idem = caller.idempotency
    async with db.transaction(single_statement=idem is None) as conn:
        await idempotency.claim(conn, idem)
        row = await repository.insert_method(
            conn,
            merchant_id=caller.merchant_id,
            id=pm_id,
            livemode=caller.livemode,
            created_at=clock.now(),
            type=params.type,
            details=shown,
            fingerprint=fingerprint,
            sealed=sealed,
            sealed_key=sealed_key,
            billing_details=sealed_billing,
            billing_key=billing_key,
            kek_id=kek_id,
            allow_redisplay=params.allow_redisplay or "unspecified",
            metadata=merge_metadata({}, params.metadata, "metadata" in params.model_fields_set),
        )
        obj = payment_method_object(row, billing)
        await idempotency.store_response(conn, idem, 200, obj)
    return await expansion.expand(db, obj, params.expand, caller.merchant_id, caller.livemode)


async def create_payment_method(
    db: Database, caller: Caller, params: PaymentMethodCreate
) -> dict[str, Any]:
    """Tokenize a card (validate it, seal its number, keep its CVC in memory only) or create
    a bank account or redirect payment method."""
    expansion.validate(OBJECT, params.expand)
    if params.type != "card":
        return await _create_method(db, caller, params)
    _details_for(params)
    assert params.card is not None
    card = _tokenize(
        params.card.number, params.card.exp_month, params.card.exp_year, params.card.cvc
    )
    billing = merge_billing_details({}, params.billing_details) if params.billing_details else {}
    idem = caller.idempotency
    async with db.transaction(single_statement=idem is None) as conn:
        await idempotency.claim(conn, idem)
        row = await _insert(
            conn,
            caller.merchant_id,
            caller.livemode,
            card,
            billing=billing,
            metadata=merge_metadata({}, params.metadata, "metadata" in params.model_fields_set),
            allow_redisplay=params.allow_redisplay or "unspecified",
        )
        obj = payment_method_object(row, billing)
        await idempotency.store_response(conn, idem, 200, obj)
    _remember_cvc(card)
    return await expansion.expand(db, obj, params.expand, caller.merchant_id, caller.livemode)


async def retrieve_payment_method(
    db: Database, caller: Caller, pm_id: str, expand: list[str]
) -> dict[str, Any]:
    """Retrieve a payment method; in test mode a test token makes a fresh one."""
    expansion.validate(OBJECT, expand)
    if pm_id in TEST_TOKENS and not caller.livemode:
        async with db.transaction(single_statement=True) as conn:
            row, card = await _materialise(conn, caller.merchant_id, pm_id)
        _remember_cvc(card)
    else:
        async with db.connection() as conn:
            found = await repository.get(conn, caller.merchant_id, caller.livemode, pm_id)
        if found is None:
            raise PaymentMethodMissing(pm_id)
        row = found
    return await expansion.expand(db, _render(row), expand, caller.merchant_id, caller.livemode)


async def update_payment_method(
    db: Database, caller: Caller, pm_id: str, params: PaymentMethodUpdate
) -> dict[str, Any]:
    """Update billing details, metadata, ``allow_redisplay`` or the expiry date of a payment
    method attached to a customer (Stripe refuses updates to unattached ones)."""
    expansion.validate(OBJECT, params.expand)
    fields = params.model_fields_set
    ring = keyring()
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        row = await repository.get(
            conn, caller.merchant_id, caller.livemode, pm_id, for_update=True
        )
        if row is None:
            raise PaymentMethodMissing(pm_id)
        if row["customer_id"] is None:
            raise must_be_attached_to_update()
        before = _render(row)
        exp_month, exp_year = row["exp_month"], row["exp_year"]
        if params.card is not None and row["type"] != "card":
            raise InvalidRequest(
                f"A payment method of type {row['type']} has no card to update.", param="card"
            )
        if params.card is not None:
            if params.card.exp_month is not None:
                exp_month = params.card.exp_month
            if params.card.exp_year is not None:
                exp_year = params.card.exp_year
            exp_month, exp_year = cards.check_expiry(exp_month, exp_year, clock.now())
        billing = before["billing_details"]
        billing_key: bytes | None = row["billing_key"] and bytes(row["billing_key"])
        sealed_billing: bytes | None = row["billing_details"] and bytes(row["billing_details"])
        if "billing_details" in fields:
            billing = merge_billing_details(billing, params.billing_details)
            billing_key, sealed_billing = sealing.seal_billing(pm_id, billing)
        elif billing_key is not None:
            billing_key = sealing.under_current_kek(billing_key, ring)
        # Whatever this row was wrapped by, it leaves wrapped by the current KEK, so the row's
        # single kek_id stays true for both of its keys.
        pan_key = (
            None
            if row["pan_key"] is None
            else sealing.under_current_kek(bytes(row["pan_key"]), ring)
        )
        row = await repository.update_details(
            conn,
            caller.merchant_id,
            pm_id,
            exp_month=exp_month,
            exp_year=exp_year,
            billing_details=sealed_billing,
            billing_key=billing_key,
            pan_key=pan_key,
            kek_id=ring.current.key_id,
            allow_redisplay=params.allow_redisplay or row["allow_redisplay"],
            metadata=merge_metadata(row["metadata"], params.metadata, "metadata" in fields),
        )
        obj = payment_method_object(row, billing)
        previous = _previous(before, obj)
        if previous:
            await events.emit(
                conn,
                type="payment_method.updated",
                obj=obj,
                previous_attributes=previous,
                **_event_args(caller),
            )
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return await expansion.expand(db, obj, params.expand, caller.merchant_id, caller.livemode)


async def _existing_customer(db: Database, caller: Caller, customer_id: str) -> None:
    found = await customers.customer_for_expansion(
        db, caller.merchant_id, caller.livemode, customer_id
    )
    if found is None or found.get("deleted"):
        raise InvalidRequest(
            f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )


async def attach_payment_method(
    db: Database, caller: Caller, pm_id: str, params: PaymentMethodAttach
) -> dict[str, Any]:
    """Attach a payment method to a customer so it can be used again (card on file).

    Attaching to the customer it already belongs to changes nothing; a payment method attached
    elsewhere, or once detached, cannot be attached."""
    expansion.validate(OBJECT, params.expand)
    await _existing_customer(db, caller, params.customer)
    card: _NewCard | None = None
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        row: Record | None
        if pm_id in TEST_TOKENS and not caller.livemode:
            # In the attach's own transaction: a failed attach leaves no stray payment method.
            row, card = await _materialise(conn, caller.merchant_id, pm_id)
            pm_id = row["id"]
        else:
            row = await repository.get(
                conn, caller.merchant_id, caller.livemode, pm_id, for_update=True
            )
        if row is None:
            raise PaymentMethodMissing(pm_id)
        if row["customer_id"] != params.customer:
            if row["customer_id"] is not None:
                raise already_attached()
            if row["detached_at"] is not None:
                raise not_reusable(pm_id)
            row = await repository.set_customer(
                conn, caller.merchant_id, pm_id, params.customer, None
            )
            obj = _render(row)
            await events.emit(conn, type="payment_method.attached", obj=obj, **_event_args(caller))
        else:
            obj = _render(row)
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    if card is not None:
        _remember_cvc(card)
    return await expansion.expand(db, obj, params.expand, caller.merchant_id, caller.livemode)


async def detach_payment_method(
    db: Database, caller: Caller, pm_id: str, expand: list[str]
) -> dict[str, Any]:
    """Detach a payment method from its customer. It can never be used again, and stops being
    the customer's default payment method in the same transaction."""
    expansion.validate(OBJECT, expand)
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        # Read first (no lock) to learn the customer, whose row is locked before this one: a
        # customer update making this card its default locks in that order too.
        row = await repository.get(conn, caller.merchant_id, caller.livemode, pm_id)
        if row is None:
            raise PaymentMethodMissing(pm_id)
        customer_id = row["customer_id"]
        if customer_id is None:
            raise not_attached()
        await customers.forget_default_payment_method(conn, caller.merchant_id, customer_id, pm_id)
        row = await repository.get(
            conn, caller.merchant_id, caller.livemode, pm_id, for_update=True
        )
        if row is None or row["customer_id"] != customer_id:  # a concurrent detach won
            raise not_attached()
        row = await repository.set_customer(conn, caller.merchant_id, pm_id, None, clock.now())
        obj = _render(row)
        await events.emit(
            conn,
            type="payment_method.detached",
            obj=obj,
            previous_attributes={"customer": customer_id},
            **_event_args(caller),
        )
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    cvc_store.store.take(pm_id)  # a detached card is never authorised again
    return await expansion.expand(db, obj, expand, caller.merchant_id, caller.livemode)


async def list_payment_methods(
    db: Database, caller: Caller, params: PaymentMethodList
) -> dict[str, Any]:
    """List payment methods, newest first, optionally a customer's only."""
    expansion.validate(OBJECT, params.expand, is_list=True)
    if params.customer is not None:
        await _existing_customer(db, caller, params.customer)
    rows: list[Record] = []
    if params.type is None or params.type in METHOD_TYPES:
        async with db.connection() as conn:
            rows = await repository.list_page(
                conn,
                caller.merchant_id,
                caller.livemode,
                params,
                customer_id=params.customer,
                type=params.type,
            )
    page, has_more = params.page(rows)
    result = list_object("/v1/payment_methods", page, has_more, _render)
    return await expansion.expand(db, result, params.expand, caller.merchant_id, caller.livemode)


async def _customer_or_404(db: Database, caller: Caller, customer_id: str) -> None:
    found = await customers.customer_for_expansion(
        db, caller.merchant_id, caller.livemode, customer_id
    )
    if found is None:
        raise ResourceMissing("customer", customer_id, param="customer")


async def list_customer_payment_methods(
    db: Database, caller: Caller, customer_id: str, params: CustomerPaymentMethodList
) -> dict[str, Any]:
    """A customer's payment methods, newest first."""
    expansion.validate(OBJECT, params.expand, is_list=True)
    await _customer_or_404(db, caller, customer_id)
    rows: list[Record] = []
    if params.type is None or params.type in METHOD_TYPES:
        async with db.connection() as conn:
            rows = await repository.list_page(
                conn,
                caller.merchant_id,
                caller.livemode,
                params,
                customer_id=customer_id,
                allow_redisplay=params.allow_redisplay,
                type=params.type,
            )
    page, has_more = params.page(rows)
    url = f"/v1/customers/{customer_id}/payment_methods"
    result = list_object(url, page, has_more, _render)
    return await expansion.expand(db, result, params.expand, caller.merchant_id, caller.livemode)


async def retrieve_customer_payment_method(
    db: Database, caller: Caller, customer_id: str, pm_id: str, expand: list[str]
) -> dict[str, Any]:
    """One of a customer's payment methods (404 unless attached to that customer)."""
    expansion.validate(OBJECT, expand)
    await _customer_or_404(db, caller, customer_id)
    async with db.connection() as conn:
        row = await repository.get(conn, caller.merchant_id, caller.livemode, pm_id)
    if row is None or row["customer_id"] != customer_id:
        raise PaymentMethodMissing(pm_id)
    return await expansion.expand(db, _render(row), expand, caller.merchant_id, caller.livemode)


# --- for other domains ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardForAuthorization:
    """A card as a PSP call needs it. It exists only in memory, for one authorisation: never
    log it, store it, or put it in an exception; ``repr`` shows the brand and last four only."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str | None = field(repr=False)
    brand: str
    country: str | None
    funding: str
    fingerprint: str
    last4: str


async def resolve_payment_method(
    db: Database,
    merchant_id: str,
    livemode: bool,
    pm_or_token: str,
    *,
    param: str = "payment_method",
) -> str:
    """The id of a real payment method for ``pm_or_token``.

    In test mode a test token (``pm_card_visa``, …) creates a fresh payment method from its
    test card, every time, as Stripe does; in live mode tokens do not exist. Any other value
    must name one of this merchant's payment methods in this mode. Raises a 400
    ``resource_missing`` naming ``param`` otherwise."""
    if pm_or_token in TEST_TOKENS and not livemode:
        async with db.transaction(single_statement=True) as conn:
            row, card = await _materialise(conn, merchant_id, pm_or_token)
        _remember_cvc(card)
        pm_id: str = row["id"]
        return pm_id
    async with db.connection() as conn:
        found = await repository.get(conn, merchant_id, livemode, pm_or_token)
    if found is None:
        raise PaymentMethodMissing(pm_or_token, param=param)
    return pm_or_token


async def get_payment_method(
    db: Database, merchant_id: str, livemode: bool, pm_id: str, *, param: str = "payment_method"
) -> dict[str, Any]:
    """The ``payment_method`` object (Stripe's shape) of one of the merchant's payment methods.

    Does not resolve test tokens (call ``resolve_payment_method`` first); raises a
    ``resource_missing`` error naming ``param`` when there is no such payment method."""
    async with db.connection() as conn:
        row = await repository.get(conn, merchant_id, livemode, pm_id)
    if row is None:
        raise PaymentMethodMissing(pm_id, param=param)
    return _render(row)


async def card_for_authorization(
    db: Database, merchant_id: str, livemode: bool, pm_id: str, *, param: str = "payment_method"
) -> CardForAuthorization:
    """Decrypt a payment method's card for one authorisation: the only way a PAN leaves the
    vault.

    Takes the CVC out of this process's memory if it is still there (first authorisation
    after tokenization, in the process that tokenized it); later calls get ``cvc=None``, as a
    card-on-file payment does. So call it once per attempt and reuse the result for retries of
    that attempt. Raises ``resource_missing`` (naming ``param``) for an unknown id and
    ``payment_method_unexpected_state`` for a detached payment method."""
    async with db.connection() as conn:
        row = await repository.get(conn, merchant_id, livemode, pm_id)
    if row is None:
        raise PaymentMethodMissing(pm_id, param=param)
    if row["detached_at"] is not None:
        raise not_reusable(pm_id)
    if row["type"] != "card":
        # Never hand a bank account number to a card acquirer.
        raise InvalidRequest(f"The PaymentMethod {pm_id} is not a card.", param=param)
    number = sealing.open_pan(row)
    return CardForAuthorization(
        number=number,
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        cvc=cvc_store.store.take(pm_id),
        brand=row["brand"],
        country=row["country"],
        funding=row["funding"],
        fingerprint=row["fingerprint"],
        last4=row["last4"],
    )


@dataclass(frozen=True, slots=True)
class BankAccountForDebit:
    """A bank account as a debit needs it, in memory for one call: never log it, store it or
    put it in an exception; ``repr`` shows no number."""

    rail: str  # ach | sepa
    account_number: str | None = field(repr=False)
    routing_number: str | None
    iban: str | None = field(repr=False)
    holder_name: str | None
    last4: str


async def bank_account_for_debit(
    db: Database, merchant_id: str, livemode: bool, pm_id: str, *, param: str = "payment_method"
) -> BankAccountForDebit:
    """Open a bank account payment method's sealed number for one debit: the only way an
    account number or IBAN leaves the vault (with ``bank_account_for_refund``). A detached
    payment method debits nothing more (``payment_method_unexpected_state``)."""
    return await _open_bank_account(db, merchant_id, livemode, pm_id, param, for_refund=False)


async def bank_account_for_refund(
    db: Database, merchant_id: str, livemode: bool, pm_id: str, *, param: str = "payment_method"
) -> BankAccountForDebit:
    """Open the sealed number of the account a settled debit came from, for one refund's
    credit transfer back to it. Unlike ``bank_account_for_debit`` it ignores ``detached_at``:
    detaching stops future debits, not the return of money already taken from the account
    (a detached payment method keeps its sealed number)."""
    return await _open_bank_account(db, merchant_id, livemode, pm_id, param, for_refund=True)


async def _open_bank_account(
    db: Database, merchant_id: str, livemode: bool, pm_id: str, param: str, *, for_refund: bool
) -> BankAccountForDebit:
    async with db.connection() as conn:
        row = await repository.get(conn, merchant_id, livemode, pm_id)
    if row is None:
        raise PaymentMethodMissing(pm_id, param=param)
    if row["detached_at"] is not None and not for_refund:
        raise not_reusable(pm_id)
    if row["type"] not in ("us_bank_account", "sepa_debit"):
        raise InvalidRequest(f"The PaymentMethod {pm_id} is not a bank account.", param=param)
    secret = sealing.open_pan(row)
    details = row["details"] or {}
    holder = sealing.open_billing(row).get("name")
    if row["type"] == "us_bank_account":
        return BankAccountForDebit(
            "ach", secret, details.get("routing_number"), None, holder, details.get("last4", "")
        )
    return BankAccountForDebit("sepa", None, None, secret, holder, details.get("last4", ""))


def take_cvc(pm_id: str) -> str | None:
    """Remove and return the CVC waiting in this process's memory for ``pm_id`` (None once it
    was taken, after its 10-minute TTL, or in another API process). ``card_for_authorization``
    already does this; call it directly only to discard a code unused."""
    return cvc_store.store.take(pm_id)


async def record_checks(
    db: Database,
    merchant_id: str,
    livemode: bool,
    pm_id: str,
    *,
    cvc_check: str | None = None,
    address_line1_check: str | None = None,
    address_postal_code_check: str | None = None,
) -> None:
    """Record what an authorisation verified (``pass``, ``fail``, ``unavailable``) into
    ``card.checks``; a None leaves that check unchanged."""
    async with db.transaction(single_statement=True) as conn:
        found = await repository.set_checks(
            conn,
            merchant_id,
            livemode,
            pm_id,
            cvc_check=cvc_check,
            address_line1_check=address_line1_check,
            address_postal_code_check=address_postal_code_check,
        )
    if not found:
        raise PaymentMethodMissing(pm_id, param="payment_method")


async def ensure_attached(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    pm_id: str,
    customer_id: str,
    *,
    param: str,
) -> None:
    """Raise unless ``pm_id`` is attached to ``customer_id`` (for a customer's
    ``invoice_settings[default_payment_method]``).

    Runs on the caller's connection, inside its transaction, after the caller locked the
    customer row. A detach locks that row before the payment method's, so a concurrent detach
    either committed first (and this fails) or waits for the caller's commit and then unsets
    the default it finds."""
    row = await repository.get(conn, merchant_id, livemode, pm_id)
    if row is None:
        raise PaymentMethodMissing(pm_id, param=param)
    if row["customer_id"] != customer_id:
        raise InvalidRequest(
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            param=param,
        )


async def payment_method_for_expansion(
    db: Database, merchant_id: str, livemode: bool, pm_id: str
) -> dict[str, Any] | None:
    """The payment method object, for other objects' ``expand[]=payment_method``."""
    async with db.connection() as conn:
        row = await repository.get(conn, merchant_id, livemode, pm_id)
    return _render(row) if row else None


# A card's customer, and a customer's default card, expand into the objects they name.
expansion.register(OBJECT, "customer", "customer", customers.customer_for_expansion)
expansion.register(
    "customer", "invoice_settings.default_payment_method", OBJECT, payment_method_for_expansion
)
