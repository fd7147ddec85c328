"""Payment methods through the official stripe SDK against a live Kassa API."""

from __future__ import annotations

import uuid

import pytest
import stripe

from kassa.core import clock
from kassa.merchants import service as merchants
from kassa.vault.tokens import TEST_TOKENS
from tests.factories import new_merchant, stripe_client
from tests.vault.conftest import card


def test_create_and_retrieve_a_card(client):
    pm = client.v1.payment_methods.create(
        card(
            "4242 4242 4242 4242",
            billing_details={"name": "Ada Lovelace", "address": {"postal_code": "EC1A"}},
            metadata={"order": "42"},
        )
    )
    assert pm.id.startswith("pm_")
    assert (pm.object, pm.type, pm.livemode, pm.customer) == ("payment_method", "card", False, None)
    c = pm.card
    assert (c.brand, c.last4, c.exp_month, c.exp_year) == ("visa", "4242", 12, clock.now().year + 2)
    assert (c.funding, c.country, c.display_brand) == ("credit", "US", "visa")
    assert c.networks.available == ["visa"]
    assert len(c.fingerprint) == 16
    assert c.checks.cvc_check == "unchecked"
    assert c.checks.address_postal_code_check == "unchecked"
    assert c.checks.address_line1_check is None
    assert pm.billing_details.name == "Ada Lovelace"
    assert pm.billing_details.address.postal_code == "EC1A"
    assert pm.billing_details.email is None
    assert pm.metadata.to_dict() == {"order": "42"}
    assert "number" not in c
    assert "cvc" not in c

    got = client.v1.payment_methods.retrieve(pm.id)
    assert got.to_dict() == pm.to_dict()


@pytest.mark.parametrize(
    ("number", "brand", "country", "funding", "display"),
    [
        ("5555555555554444", "mastercard", "US", "credit", "mastercard"),
        ("378282246310005", "amex", "US", "credit", "american_express"),
        ("4000002760003184", "visa", "DE", "credit", "visa"),
        ("4000056655665556", "visa", "US", "debit", "visa"),
        ("3566002020360505", "jcb", "JP", "credit", "jcb"),
        ("6200000000000005", "unionpay", "CN", "credit", "union_pay"),
        ("36227206271667", "diners", "US", "credit", "diners_club"),
    ],
)
def test_brand_country_and_funding(client, number, brand, country, funding, display):
    pm = client.v1.payment_methods.create(card(number, cvc=None))
    c = pm.card
    assert (c.brand, c.country, c.funding, c.display_brand) == (brand, country, funding, display)
    assert c.last4 == number[-4:]
    assert c.checks.cvc_check is None  # no CVC given


def test_two_digit_years_mean_this_century(client):
    year = (clock.now().year + 3) % 100
    params = card()
    params["card"]["exp_year"] = year
    assert client.v1.payment_methods.create(params).card.exp_year == 2000 + year


def _past_month() -> tuple[int, int] | None:
    now = clock.now()
    return (now.month - 1, now.year) if now.month > 1 else None


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        ({"number": "4242424242424241"}, "incorrect_number", "card[number]"),
        ({"number": "4242"}, "incorrect_number", "card[number]"),
        ({"number": "4242abcd42424242"}, "incorrect_number", "card[number]"),
        ({"number": "37828224631000"}, "incorrect_number", "card[number]"),
        ({"exp_month": 13}, "invalid_expiry_month", "card[exp_month]"),
        ({"exp_month": 0}, "invalid_expiry_month", "card[exp_month]"),
        ({"exp_year": 2001}, "invalid_expiry_year", "card[exp_year]"),
        ({"exp_year": 2150}, "invalid_expiry_year", "card[exp_year]"),
        ({"cvc": "12"}, "invalid_cvc", "card[cvc]"),
        ({"cvc": "1234"}, "invalid_cvc", "card[cvc]"),
        ({"cvc": "12a"}, "invalid_cvc", "card[cvc]"),
        ({"number": "378282246310005", "cvc": "123"}, "invalid_cvc", "card[cvc]"),
    ],
)
def test_card_errors_name_code_and_param(client, change, code, param):
    params = card()
    params["card"].update(change)
    before = client.v1.payment_methods.list({"limit": 100}).data
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_methods.create(params)
    assert err.value.http_status == 402
    assert (err.value.code, err.value.param) == (code, param)
    assert err.value.error.type == "card_error"
    assert client.v1.payment_methods.list({"limit": 100}).data == before


def test_an_expired_card_is_rejected(client):
    past = _past_month()
    if past is None:
        pytest.skip("in January no month of this year has passed")
    params = card()
    params["card"].update(exp_month=past[0], exp_year=past[1])
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_methods.create(params)
    assert (err.value.code, err.value.param) == ("invalid_expiry_month", "card[exp_month]")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"type": "card", "card": {"exp_month": 12, "exp_year": 2040}}, "card[number]"),
        ({"type": "card"}, "card"),
        ({"card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2040}}, "type"),
        ({**card(), "type": "bacs_debit"}, "type"),
        ({**card(), "type": "sepa_debit"}, "card"),
        ({"type": "card", "card": {**card()["card"], "exp_month": "soon"}}, "card[exp_month]"),
        ({**card(), "card": {**card()["card"], "colour": "gold"}}, "card[colour]"),
        ({**card(), "billing_details": {"address": {"country": "GBR"}}}, None),
    ],
)
def test_malformed_parameters_are_400s(client, params, param):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.create(params)
    assert err.value.http_status == 400
    if param is not None:
        assert err.value.param == param
    else:
        assert err.value.param.startswith("billing_details")


def test_update_needs_an_attached_payment_method(client):
    pm = client.v1.payment_methods.create(card())
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.update(pm.id, {"metadata": {"a": "b"}})
    assert err.value.code == "payment_method_unexpected_state"


def test_update_billing_details_metadata_and_expiry(client):
    cus = client.v1.customers.create({"email": "u@example.com"})
    pm = client.v1.payment_methods.create(
        card(
            billing_details={"name": "A", "address": {"line1": "1 Way", "city": "Oslo"}},
            metadata={"keep": "1", "drop": "2"},
        )
    )
    client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    year = clock.now().year + 5
    updated = client.v1.payment_methods.update(
        pm.id,
        {
            "billing_details": {"email": "a@example.com", "address": {"city": "Bergen"}},
            "metadata": {"drop": "", "new": "3"},
            "card": {"exp_month": 3, "exp_year": year},
        },
    )
    assert updated.billing_details.name == "A"  # untouched fields stay
    assert updated.billing_details.email == "a@example.com"
    assert updated.billing_details.address.line1 == "1 Way"  # the address merges field-wise
    assert updated.billing_details.address.city == "Bergen"
    assert updated.metadata.to_dict() == {"keep": "1", "new": "3"}
    assert (updated.card.exp_month, updated.card.exp_year) == (3, year)
    assert updated.card.last4 == "4242"
    assert client.v1.payment_methods.retrieve(pm.id).to_dict() == updated.to_dict()

    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_methods.update(pm.id, {"card": {"exp_month": 14}})
    assert (err.value.code, err.value.param) == ("invalid_expiry_month", "card[exp_month]")
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_methods.update(pm.id, {"card": {"exp_year": 2000}})
    assert err.value.code == "invalid_expiry_year"
    cleared = client.v1.payment_methods.update(pm.id, {"billing_details": ""})
    assert cleared.billing_details.name is None
    assert cleared.billing_details.address.line1 is None

    events = client.v1.events.list({"type": "payment_method.updated"}).data
    assert events[-1].data.object.id == pm.id
    assert events[-1].data.previous_attributes.card.exp_month == 12


def test_attach_and_detach(client):
    cus = client.v1.customers.create({"name": "Owner"})
    other = client.v1.customers.create({"name": "Other"})
    pm = client.v1.payment_methods.create(card())

    attached = client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    assert attached.customer == cus.id
    again = client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    assert again.customer == cus.id
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.attach(pm.id, {"customer": other.id})
    assert err.value.code == "payment_method_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.attach(pm.id, {"customer": "cus_nope"})
    assert (err.value.code, err.value.param, err.value.http_status) == (
        "resource_missing",
        "customer",
        400,
    )

    detached = client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.detach(pm.id)
    assert err.value.code == "payment_method_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    assert "may not be used again" in err.value.user_message

    types = [e.type for e in client.v1.events.list({"type": "payment_method.*"}).data]
    assert types == ["payment_method.detached", "payment_method.attached"]
    detached_event = client.v1.events.list({"type": "payment_method.detached"}).data[0]
    assert detached_event.data.previous_attributes.customer == cus.id

    deleted = client.v1.customers.create({"name": "Gone"})
    client.v1.customers.delete(deleted.id)
    fresh = client.v1.payment_methods.create(card())
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.attach(fresh.id, {"customer": deleted.id})
    assert err.value.param == "customer"


def test_list_by_customer_with_auto_paging(client):
    cus = client.v1.customers.create({"name": "Many cards"})
    other = client.v1.customers.create({"name": "Someone else"})
    mine = [
        client.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id}).id for _ in range(23)
    ]
    theirs = client.v1.payment_methods.attach("pm_card_amex", {"customer": other.id}).id
    unattached = client.v1.payment_methods.create(card()).id

    seen = [
        p.id
        for p in client.v1.customers.payment_methods.list(cus.id, {"limit": 5}).auto_paging_iter()
    ]
    assert seen == list(reversed(mine))
    listing = client.v1.customers.payment_methods.list(cus.id, {"limit": 3})
    assert listing.url == f"/v1/customers/{cus.id}/payment_methods"
    assert listing.has_more is True

    flat = client.v1.payment_methods.list({"customer": cus.id, "type": "card", "limit": 100})
    assert [p.id for p in flat.data] == list(reversed(mine))
    assert flat.url == "/v1/payment_methods"
    assert client.v1.payment_methods.list({"customer": cus.id, "type": "sepa_debit"}).data == []

    everything = [p.id for p in client.v1.payment_methods.list({"limit": 100}).auto_paging_iter()]
    assert {theirs, unattached, *mine} <= set(everything)

    one = client.v1.customers.payment_methods.retrieve(cus.id, mine[0])
    assert one.id == mine[0]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.payment_methods.retrieve(cus.id, theirs)
    assert err.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.payment_methods.list("cus_missing")
    assert err.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.list({"customer": "cus_missing"})
    assert err.value.param == "customer"


def test_test_tokens_make_fresh_payment_methods(client):
    first = client.v1.payment_methods.retrieve("pm_card_visa")
    second = client.v1.payment_methods.retrieve("pm_card_visa")
    assert first.id != second.id
    assert first.id.startswith("pm_")
    assert first.id != "pm_card_visa"
    assert (first.card.brand, first.card.last4) == ("visa", "4242")
    assert first.card.fingerprint == second.card.fingerprint
    assert client.v1.payment_methods.retrieve(first.id).id == first.id
    for token, number in TEST_TOKENS.items():
        pm = client.v1.payment_methods.retrieve(token)
        assert pm.card.last4 == number[-4:], token
    assert client.v1.payment_methods.retrieve("pm_card_authenticationRequired").card.country == "DE"
    assert client.v1.payment_methods.retrieve("pm_card_amex").card.brand == "amex"


async def test_test_tokens_do_not_exist_in_live_mode(api_url, merchant):
    live = stripe_client(api_url, merchant.key("secret", livemode=True))
    with pytest.raises(stripe.InvalidRequestError) as err:
        live.v1.payment_methods.retrieve("pm_card_visa")
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")
    cus = live.v1.customers.create({"name": "live"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        live.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})
    assert err.value.code == "resource_missing"
    pm = live.v1.payment_methods.create(card())
    assert pm.livemode is True


async def test_a_failed_attach_of_a_token_leaves_nothing_behind(client):
    before = client.v1.payment_methods.list({"limit": 100}).data
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.attach("pm_card_visa", {"customer": "cus_nope"})
    assert client.v1.payment_methods.list({"limit": 100}).data == before


async def test_fingerprints_are_per_card_and_shared_across_merchants(api_url, db, client):
    other = stripe_client(api_url, (await new_merchant(db)).key("secret"))
    mine = client.v1.payment_methods.create(card("4242424242424242")).card.fingerprint
    mine_again = client.v1.payment_methods.create(card("4242424242424242")).card.fingerprint
    theirs = other.v1.payment_methods.create(card("4242424242424242")).card.fingerprint
    different = client.v1.payment_methods.create(card("5555555555554444")).card.fingerprint
    assert mine == mine_again == theirs
    assert different != mine


async def test_merchants_and_modes_are_isolated(api_url, db, client, merchant):
    theirs = stripe_client(api_url, (await new_merchant(db)).key("secret"))
    live = stripe_client(api_url, merchant.key("secret", livemode=True))
    cus = client.v1.customers.create({"name": "mine"})
    pm = client.v1.payment_methods.attach(
        client.v1.payment_methods.create(card()).id, {"customer": cus.id}
    )
    for c in (theirs, live):
        with pytest.raises(stripe.InvalidRequestError) as err:
            c.v1.payment_methods.retrieve(pm.id)
        assert err.value.http_status == 404
        with pytest.raises(stripe.InvalidRequestError) as err:
            c.v1.payment_methods.update(pm.id, {"metadata": {"x": "y"}})
        assert err.value.http_status == 404
        with pytest.raises(stripe.InvalidRequestError) as err:
            c.v1.payment_methods.detach(pm.id)
        assert err.value.http_status == 404
        with pytest.raises(stripe.InvalidRequestError):
            c.v1.customers.payment_methods.list(cus.id)
        assert pm.id not in [p.id for p in c.v1.payment_methods.list({"limit": 100}).data]
    other_cus = theirs.v1.customers.create({"name": "theirs"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        theirs.v1.payment_methods.attach(pm.id, {"customer": other_cus.id})
    assert err.value.http_status == 404
    assert client.v1.payment_methods.retrieve(pm.id).customer == cus.id


def test_idempotent_create(client):
    key = f"pm-{uuid.uuid4()}"
    first = client.v1.payment_methods.create(card(), {"idempotency_key": key})
    second = client.v1.payment_methods.create(card(), {"idempotency_key": key})
    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_methods.create(card("5555555555554444"), {"idempotency_key": key})


def test_expand_customer_and_default_payment_method(client):
    cus = client.v1.customers.create({"name": "Defaulted"})
    pm = client.v1.payment_methods.create(card())
    attached = client.v1.payment_methods.attach(pm.id, {"customer": cus.id, "expand": ["customer"]})
    assert attached.customer.id == cus.id
    assert attached.customer.name == "Defaulted"
    got = client.v1.payment_methods.retrieve(pm.id, {"expand": ["customer"]})
    assert got.customer.object == "customer"
    listed = client.v1.customers.payment_methods.list(cus.id, {"expand": ["data.customer"]})
    assert listed.data[0].customer.id == cus.id
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.retrieve(pm.id, {"expand": ["card"]})
    assert err.value.param == "expand"

    updated = client.v1.customers.update(
        cus.id,
        {
            "invoice_settings": {"default_payment_method": pm.id},
            "expand": ["invoice_settings.default_payment_method"],
        },
    )
    assert updated.invoice_settings.default_payment_method.id == pm.id
    assert updated.invoice_settings.default_payment_method.card.last4 == "4242"
    plain = client.v1.customers.retrieve(cus.id)
    assert plain.invoice_settings.default_payment_method == pm.id
    deep = client.v1.customers.retrieve(
        cus.id, {"expand": ["invoice_settings.default_payment_method.customer"]}
    )
    assert deep.invoice_settings.default_payment_method.customer.id == cus.id

    unattached = client.v1.payment_methods.create(card())
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.update(
            cus.id, {"invoice_settings": {"default_payment_method": unattached.id}}
        )
    assert err.value.param == "invoice_settings[default_payment_method]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.update(
            cus.id, {"invoice_settings": {"default_payment_method": "pm_missing"}}
        )
    assert (err.value.code, err.value.param) == (
        "resource_missing",
        "invoice_settings[default_payment_method]",
    )
    assert client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method == pm.id

    client.v1.payment_methods.detach(pm.id)  # a detached card stops being the default
    assert client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method is None

    second = client.v1.payment_methods.attach("pm_card_mastercard", {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": second.id}})
    unset = client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": ""}})
    assert unset.invoice_settings.default_payment_method is None


async def test_restricted_keys(api_url, db, merchant, client):
    pm = client.v1.payment_methods.create(card())
    read_only = await merchants.create_restricted_key(
        db, merchant.merchant["id"], {"payment_methods": "read"}
    )
    rk = stripe_client(api_url, read_only.secret)
    assert rk.v1.payment_methods.retrieve(pm.id).id == pm.id
    with pytest.raises(stripe.PermissionError):
        rk.v1.payment_methods.create(card())
    customers_only = await merchants.create_restricted_key(
        db, merchant.merchant["id"], {"customers": "write"}
    )
    with pytest.raises(stripe.PermissionError):
        stripe_client(api_url, customers_only.secret).v1.payment_methods.retrieve(pm.id)


def test_publishable_keys_may_tokenize_but_not_read(api_url, merchant):
    browser = stripe_client(api_url, merchant.key("publishable"))
    pm = browser.v1.payment_methods.create(card("4242424242424242"))
    assert pm.card.last4 == "4242"
    with pytest.raises(stripe.PermissionError):
        browser.v1.payment_methods.retrieve(pm.id)
    with pytest.raises(stripe.PermissionError):
        browser.v1.customers.list()
    server = stripe_client(api_url, merchant.key("secret"))
    assert server.v1.payment_methods.retrieve(pm.id).id == pm.id
