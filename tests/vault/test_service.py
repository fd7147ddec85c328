"""The vault's service API as the payments domain calls it, in-process on a real database."""

from __future__ import annotations

import pytest

from kassa.core import clock
from kassa.core.errors import KassaError
from kassa.customers import service as customers
from kassa.customers.schemas import CustomerCreate
from kassa.vault import service as vault
from kassa.vault.cvc import store as cvc_store
from kassa.vault.schemas import PaymentMethodAttach, PaymentMethodCreate
from tests.vault.conftest import caller, card


async def _tokenize(
    db, merchant_id: str, number: str = "4242424242424242", cvc: str | None = "321"
):
    params = PaymentMethodCreate.model_validate(card(number, cvc=cvc))
    return await vault.create_payment_method(db, caller(merchant_id), params)


async def test_card_for_authorization_decrypts_and_hands_out_the_cvc_once(db, merchant):
    mid = merchant.merchant["id"]
    pm = await _tokenize(db, mid)
    first = await vault.card_for_authorization(db, mid, False, pm["id"])
    assert first.number == "4242424242424242"
    assert first.cvc == "321"
    assert (first.brand, first.last4, first.country, first.funding) == (
        "visa",
        "4242",
        "US",
        "credit",
    )
    assert first.fingerprint == pm["card"]["fingerprint"]
    assert (first.exp_month, first.exp_year) == (12, clock.now().year + 2)
    later = await vault.card_for_authorization(db, mid, False, pm["id"])
    assert later.number == first.number
    assert later.cvc is None  # gone after the first authorisation: card on file from now on


async def test_the_cvc_expires_unused(db, merchant):
    mid = merchant.merchant["id"]
    pm = await _tokenize(db, mid, cvc="555")
    clock.advance(601)
    try:
        assert vault.take_cvc(pm["id"]) is None
        assert (await vault.card_for_authorization(db, mid, False, pm["id"])).cvc is None
    finally:
        clock.reset()
    no_cvc = await _tokenize(db, mid, cvc=None)
    assert no_cvc["card"]["checks"]["cvc_check"] is None
    assert vault.take_cvc(no_cvc["id"]) is None


async def test_card_for_authorization_is_scoped_and_refuses_detached_cards(db, merchant):
    mid = merchant.merchant["id"]
    pm = await _tokenize(db, mid)
    with pytest.raises(KassaError) as err:
        await vault.card_for_authorization(db, "acct_other", False, pm["id"])
    assert (err.value.code, err.value.param, err.value.status) == (
        "resource_missing",
        "payment_method",
        400,
    )
    with pytest.raises(KassaError):
        await vault.card_for_authorization(db, mid, True, pm["id"])  # live mode
    assert vault.take_cvc(pm["id"]) == "321"  # the failed calls did not consume it

    cus = await customers.create_customer(
        db, caller(mid), CustomerCreate.model_validate({"name": "Holder"})
    )
    attach = PaymentMethodAttach.model_validate({"customer": cus["id"]})
    await vault.attach_payment_method(db, caller(mid), pm["id"], attach)
    await vault.detach_payment_method(db, caller(mid), pm["id"], [])
    with pytest.raises(KassaError) as err:
        await vault.card_for_authorization(db, mid, False, pm["id"])
    assert err.value.code == "payment_method_unexpected_state"


async def test_resolve_payment_method(db, merchant):
    mid = merchant.merchant["id"]
    first = await vault.resolve_payment_method(db, mid, False, "pm_card_visa_chargeDeclined")
    second = await vault.resolve_payment_method(db, mid, False, "pm_card_visa_chargeDeclined")
    assert first != second
    assert first.startswith("pm_")
    card_ = await vault.card_for_authorization(db, mid, False, first)
    assert card_.number == "4000000000000002"
    assert card_.cvc == "123"  # as if typed: the first authorisation gets a code
    amex = await vault.resolve_payment_method(db, mid, False, "pm_card_amex")
    assert (await vault.card_for_authorization(db, mid, False, amex)).cvc == "1234"

    pm = await _tokenize(db, mid)
    assert await vault.resolve_payment_method(db, mid, False, pm["id"]) == pm["id"]
    with pytest.raises(KassaError) as err:
        await vault.resolve_payment_method(db, mid, True, "pm_card_visa", param="source")
    assert (err.value.code, err.value.param) == ("resource_missing", "source")
    with pytest.raises(KassaError):
        await vault.resolve_payment_method(db, mid, False, "pm_unknown")


async def test_get_payment_method_and_record_checks(db, merchant):
    mid = merchant.merchant["id"]
    pm = await _tokenize(db, mid)
    assert await vault.get_payment_method(db, mid, False, pm["id"]) == pm
    await vault.record_checks(db, mid, False, pm["id"], cvc_check="pass")
    got = await vault.get_payment_method(db, mid, False, pm["id"])
    assert got["card"]["checks"]["cvc_check"] == "pass"
    assert got["card"]["checks"]["address_line1_check"] is None
    with pytest.raises(KassaError):
        await vault.get_payment_method(db, mid, False, "pm_card_visa")  # not resolved
    with pytest.raises(KassaError):
        await vault.record_checks(db, mid, True, pm["id"], cvc_check="fail")


async def test_a_tokenization_that_fails_keeps_no_cvc(db, merchant):
    mid = merchant.merchant["id"]
    before = len(cvc_store)
    params = PaymentMethodCreate.model_validate(card("4242424242424241", cvc="999"))
    with pytest.raises(KassaError):
        await vault.create_payment_method(db, caller(mid), params)
    assert len(cvc_store) == before
