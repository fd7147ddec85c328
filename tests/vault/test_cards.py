"""Card rules without a database: Luhn, brands, BIN data, expiry, CVC, fingerprints, the CVC
store and the card handed to a PSP call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kassa.core import clock
from kassa.vault import cards
from kassa.vault.cvc import CvcStore
from kassa.vault.errors import CardError
from kassa.vault.service import CardForAuthorization
from kassa.vault.tokens import TEST_TOKENS

NOW = datetime(2026, 6, 15, tzinfo=UTC)


def with_check_digit(body: str) -> str:
    """``body`` plus the digit that makes it Luhn-valid."""
    return next(body + d for d in "0123456789" if cards.luhn_valid(body + d))


@pytest.mark.parametrize(
    ("number", "brand", "country", "funding"),
    [
        ("4242424242424242", "visa", "US", "credit"),
        ("4000056655665556", "visa", "US", "debit"),
        ("5555555555554444", "mastercard", "US", "credit"),
        ("2223003122003222", "mastercard", "US", "credit"),
        ("5200828282828210", "mastercard", "US", "debit"),
        ("5105105105105100", "mastercard", "US", "prepaid"),
        ("378282246310005", "amex", "US", "credit"),
        ("371449635398431", "amex", "US", "credit"),
        ("6011111111111117", "discover", "US", "credit"),
        ("6011981111111113", "discover", "US", "debit"),
        ("3056930009020004", "diners", "US", "credit"),
        ("36227206271667", "diners", "US", "credit"),
        ("3566002020360505", "jcb", "JP", "credit"),
        ("6200000000000005", "unionpay", "CN", "credit"),
        ("4000002760003184", "visa", "DE", "credit"),
        ("4000002500003155", "visa", "FR", "credit"),
        ("4000000760000002", "visa", "BR", "credit"),
        ("4000008260000000", "visa", "GB", "credit"),
        ("4000058260000005", "visa", "GB", "debit"),
        ("5555558265554449", "mastercard", "GB", "credit"),
        ("4000003920000003", "visa", "JP", "credit"),
        ("4000007560000009", "visa", "CH", "credit"),
    ],
)
def test_stripe_test_cards_resolve(number, brand, country, funding):
    assert cards.normalize_number(number) == number
    assert cards.brand_of(number)[0] == brand
    info = cards.bin_info(number)
    assert (info.brand, info.country, info.funding) == (brand, country, funding)


def test_bin_data_covers_many_countries():
    assert len(cards.countries()) >= 20


@pytest.mark.parametrize(
    ("body", "brand", "country"),
    [
        ("491761000000000", "visa", None),
        ("356999000000000", "jcb", "JP"),
        ("621234000000000", "unionpay", "CN"),
        ("531234000000000", "mastercard", None),
    ],
)
def test_unknown_bins_default_sensibly(body, brand, country):
    number = with_check_digit(body)
    info = cards.bin_info(number)
    assert (info.brand, info.country, info.funding) == (brand, country, "credit")


def test_every_test_token_is_a_valid_card():
    for number in TEST_TOKENS.values():
        assert cards.normalize_number(number) == number


@pytest.mark.parametrize(
    "raw",
    [
        "4242424242424241",  # bad check digit
        "4242",  # too short
        "42424242424242424242",  # too long
        "4242-4242-abcd-4242",
        "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",  # digits, but not ASCII ones
        "",
        "3782822463100051",  # an Amex prefix with 16 digits
    ],
)
def test_incorrect_numbers(raw):
    with pytest.raises(CardError) as err:
        cards.normalize_number(raw)
    assert (err.value.code, err.value.param, err.value.status) == (
        "incorrect_number",
        "card[number]",
        402,
    )
    assert err.value.type == "card_error"
    assert raw not in err.value.message or not raw


def test_numbers_may_be_grouped():
    assert cards.normalize_number("4242 4242 4242 4242") == "4242424242424242"
    assert cards.normalize_number("3782-822463-10005") == "378282246310005"


@pytest.mark.parametrize(
    ("month", "year", "code"),
    [
        (0, 2027, "invalid_expiry_month"),
        (13, 2027, "invalid_expiry_month"),
        (5, 2026, "invalid_expiry_month"),  # last month
        (12, 2025, "invalid_expiry_year"),
        (1, 2077, "invalid_expiry_year"),  # more than 50 years ahead
        (1, -1, "invalid_expiry_year"),
    ],
)
def test_bad_expiry(month, year, code):
    with pytest.raises(CardError) as err:
        cards.check_expiry(month, year, NOW)
    assert err.value.code == code
    assert err.value.param == ("card[exp_month]" if "month" in code else "card[exp_year]")


def test_good_expiry():
    assert cards.check_expiry(6, 2026, NOW) == (6, 2026)  # good through its month
    assert cards.check_expiry(1, 27, NOW) == (1, 2027)  # two-digit year
    assert cards.check_expiry(12, 2076, NOW) == (12, 2076)


@pytest.mark.parametrize(
    ("cvc", "brand", "ok"),
    [
        ("123", "visa", True),
        ("1234", "amex", True),
        ("123", "amex", False),
        ("1234", "visa", False),
        ("12", "mastercard", False),
        ("12a", "visa", False),
        ("", "visa", False),
    ],
)
def test_cvc_length_by_brand(cvc, brand, ok):
    if ok:
        assert cards.check_cvc(cvc, brand) == cvc
    else:
        with pytest.raises(CardError) as err:
            cards.check_cvc(cvc, brand)
        assert (err.value.code, err.value.param) == ("invalid_cvc", "card[cvc]")


def test_fingerprint_is_keyed_stable_and_distinct():
    a = cards.fingerprint(b"k" * 32, "4242424242424242")
    assert a == cards.fingerprint(b"k" * 32, "4242424242424242")
    assert a != cards.fingerprint(b"k" * 32, "5555555555554444")
    assert a != cards.fingerprint(b"x" * 32, "4242424242424242")
    assert len(a) == cards.FINGERPRINT_LENGTH
    assert a.isalnum()


def test_cvc_store_gives_a_code_once_and_forgets_it_after_the_ttl():
    store = CvcStore(ttl_seconds=600)
    store.put("pm_1", "123")
    store.put("pm_2", "456")
    assert "123" not in repr(store)
    assert store.take("pm_1") == "123"
    assert store.take("pm_1") is None
    clock.advance(601)
    try:
        assert store.take("pm_2") is None
        store.put("pm_3", "789")  # purges what expired
        assert len(store) == 1
    finally:
        clock.reset()


def test_cvc_store_is_bounded():
    store = CvcStore(max_entries=3)
    for i in range(5):
        store.put(f"pm_{i}", "123")
    assert len(store) == 3
    assert store.take("pm_0") is None
    assert store.take("pm_4") == "123"


def test_card_for_authorization_hides_number_and_cvc():
    card = CardForAuthorization(
        number="4242424242424242",
        exp_month=12,
        exp_year=2030,
        cvc="987",
        brand="visa",
        country="US",
        funding="credit",
        fingerprint="abc",
        last4="4242",
    )
    shown = repr(card) + str(card) + f"{card}"
    assert "4242424242424242" not in shown
    assert "987" not in shown
    assert "last4='4242'" in shown
    with pytest.raises(AttributeError):
        card.number = "x"  # type: ignore[misc]
